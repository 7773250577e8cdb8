"""The gateway's own cost: cache-hit latency and throughput, and what a miss adds to Triton.

For each configuration (worker count, pinned to CPUs or not) on a fresh local stack:
- hit latency inside the gateway: the median of `gateway_request_duration_seconds` (measured from
  the ASGI call to the last byte sent) over sequential hits, interpolated in its buckets;
- hit throughput: one cached body at concurrency 32, with wrk when installed (a Python generator
  would take a core of the 2 from the gateway), else the closed-loop aiohttp generator;
- miss overhead: perf_analyzer at concurrency 1 with distinct inputs against Triton's gRPC port,
  against a do-nothing Python gRPC pass-through proxy (benchmarks.passthrough: the floor of any
  Python gRPC front) and against the gateway (all misses there): same binary, same kind of data.

Writes gateway.json and gateway.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen, passthrough, perf, wrk
from benchmarks.hardware import local_hardware
from benchmarks.payloads import digits_body, digits_image, unique_id
from benchmarks.scrape import scrape
from localstack.stack import LocalStack, StackPorts

ROUTE = "/predict"


@dataclass(frozen=True)
class Configuration:
    workers: int
    cpus: tuple[int, ...] = ()  # GATEWAY_CPUS; empty: not pinned

    @property
    def label(self) -> str:
        pinned = f", pinned to CPU {','.join(map(str, self.cpus))}" if self.cpus else ""
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}{pinned}"


def configurations(worker_counts: tuple[int, ...], pinned: bool = True) -> list[Configuration]:
    """Each worker count unpinned, and (with `pinned`) with one CPU a worker, the highest first."""
    allowed = sorted(os.sched_getaffinity(0), reverse=True)
    found = []
    for workers in worker_counts:
        found.append(Configuration(workers))
        if pinned:
            found.append(Configuration(workers, tuple(sorted(allowed[:workers]))))
    return found


def hit_histogram(metrics_url: str) -> dict[float, float]:
    """Cumulative bucket counts of the /predict latency histogram: upper bound -> count."""
    return {
        float(dict(labels)["le"]): count
        for (name, labels), count in scrape(metrics_url, timeout_s=5).items()
        if name == "gateway_request_duration_seconds_bucket" and dict(labels).get("route") == ROUTE
    }


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """Prometheus-style linear interpolation of quantile `q` over the samples between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return None


def miss_input_data(path: Path, count: int) -> Path:
    rows = [{"image": {"content": digits_image(unique_id()).ravel().tolist(), "shape": [1, 8, 8]}}
            for _ in range(count)]
    return perf.write_input_data(path, rows)


def measure(repository: Path, work: Path, config: Configuration, duration_s: float,
            sequential: int) -> dict:
    name = f"w{config.workers}" + ("-cpu" + "-".join(map(str, config.cpus)) if config.cpus else "")
    env = {"GATEWAY_WORKERS": str(config.workers), "GATEWAY_CPUS": ",".join(map(str, config.cpus))}
    stack = LocalStack(work / f"stack-{name}", repository, StackPorts.free(), gateway_env=env)
    stack.start()
    try:
        p = stack.ports
        predict = f"http://127.0.0.1:{p.gateway_http}{ROUTE}"
        metrics = f"http://127.0.0.1:{p.gateway_http}/metrics"
        hot = digits_body(unique_id())
        loadgen.sequential_latency(predict, lambda: hot, 50)  # stored, connections warm
        before = hit_histogram(metrics)
        sequential_hits = loadgen.sequential_latency(predict, lambda: hot, sequential)
        after = hit_histogram(metrics)
        use_wrk = wrk.available()
        if use_wrk:
            loaded = wrk.run(predict, hot, concurrency=32, duration_s=duration_s, work_dir=work / name)
        else:
            loaded = loadgen.run_http(predict, lambda: hot, concurrency=32, duration_s=duration_s)
        common = {"window_ms": 1500, "trials": 3, "work_dir": work / f"perf-{name}"}
        triton = f"127.0.0.1:{p.triton_grpc}"
        direct = perf.run("digits", triton, 1, miss_input_data(work / f"direct-{name}.json", 4000), **common)
        with passthrough.running(triton, cpu=config.cpus[0] if config.cpus else None) as proxy:
            floor = perf.run("digits", proxy, 1, miss_input_data(work / f"floor-{name}.json", 4000),
                             **common)
        through = perf.run("digits", f"127.0.0.1:{p.gateway_grpc}", 1,
                           miss_input_data(work / f"misses-{name}.json", 4000), extra=["-x", "1"], **common)
    finally:
        stack.stop()
    inside = histogram_quantile(before, after, 0.5)
    return {
        "configuration": config.label,
        "workers": config.workers,
        "cpus": list(config.cpus),
        "hit_p50_ms_inside_gateway": inside * 1000 if inside is not None else None,
        "hit_p50_ms_client": sequential_hits.p50_ms,
        "hit_p99_ms_client": sequential_hits.p99_ms,
        "hit_load_generator": "wrk" if use_wrk else "aiohttp",
        "hits_per_s_c32": loaded.throughput,
        "hit_p99_ms_c32": loaded.p99_ms,
        "hit_errors_c32": loaded.errors,
        "triton_direct_p50_ms": direct.p50_ms,
        "passthrough_p50_ms": floor.p50_ms,
        "gateway_miss_p50_ms": through.p50_ms,
        "passthrough_overhead_p50_ms": floor.p50_ms - direct.p50_ms,
        "miss_overhead_p50_ms": through.p50_ms - direct.p50_ms,
    }


def run(repository: Path, out: Path, workers: tuple[int, ...] = (1, 2), duration_s: float = 5.0,
        sequential: int = 500, pinned: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(repository, Path(tmp), config, duration_s, sequential)
                for config in configurations(workers, pinned)]
    result = {"model": "digits", "hardware": local_hardware()["description"], "rows": rows}
    (out / "gateway.json").write_text(json.dumps(result, indent=2))
    (out / "gateway.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    def f(value, digits=2):
        return "-" if value is None else f"{value:,.{digits}f}"

    generators = sorted({r.get("hit_load_generator", "aiohttp") for r in result["rows"]})
    lines = [
        "# Gateway overhead (digits)",
        "",
        (
            f"Hardware: {result.get('hardware', 'not recorded')}. Hits/s at concurrency 32 with "
            f"{' and '.join(generators)}; misses with perf_analyzer at concurrency 1 (p50). The "
            "pass-through proxy forwards bytes and does nothing else: the floor of any Python gRPC front."
        ),
        "",
        (
            "| configuration | hit p50 inside gateway ms | hit p50 client ms | hits/s at c32 | hit p99 c32 ms "
            "| Triton direct p50 ms | pass-through p50 ms | gateway miss p50 ms "
            "| pass-through overhead ms | gateway miss overhead ms |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r.get('configuration', r['workers'])} | {f(r['hit_p50_ms_inside_gateway'], 3)} "
            f"| {f(r['hit_p50_ms_client'], 3)} | {f(r['hits_per_s_c32'], 0)} | {f(r['hit_p99_ms_c32'])} "
            f"| {f(r['triton_direct_p50_ms'], 3)} | {f(r.get('passthrough_p50_ms'), 3)} "
            f"| {f(r['gateway_miss_p50_ms'], 3)} | {f(r.get('passthrough_overhead_p50_ms'), 3)} "
            f"| {f(r['miss_overhead_p50_ms'], 3)} |"
        )
    return "\n".join(lines) + "\n"

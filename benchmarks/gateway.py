"""The gateway's own cost: cache-hit latency and throughput, and what a miss adds to Triton.

- hit latency inside the gateway: the median of `gateway_request_duration_seconds` (measured from
  the ASGI call to the last byte sent) over sequential hits, interpolated in its buckets;
- hit throughput: the closed-loop HTTP generator on one cached body at concurrency 32;
- miss overhead: perf_analyzer at concurrency 1 with distinct inputs, once against Triton's gRPC
  port and once against the gateway's (all misses there), same binary, same data, same run.

Each gateway worker count gets a fresh local stack. Writes gateway.json and gateway.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks import loadgen, perf
from benchmarks.payloads import digits_body, digits_image, unique_id
from benchmarks.scrape import scrape
from localstack.stack import LocalStack, StackPorts

ROUTE = "/predict"


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


def measure_workers(repository: Path, work: Path, workers: int, duration_s: float,
                    sequential: int) -> dict:
    stack = LocalStack(work / f"stack-w{workers}", repository, StackPorts.free(),
                       gateway_env={"GATEWAY_WORKERS": str(workers)})
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
        loaded = loadgen.run_http(predict, lambda: hot, concurrency=32, duration_s=duration_s)
        data = miss_input_data(work / f"misses-w{workers}.json", 4000)
        common = {"window_ms": 1500, "trials": 3, "work_dir": work / f"perf-w{workers}"}
        direct = perf.run("digits", f"127.0.0.1:{p.triton_grpc}", 1, data, **common)
        through = perf.run("digits", f"127.0.0.1:{p.gateway_grpc}", 1, data, extra=["-x", "1"], **common)
    finally:
        stack.stop()
    inside = histogram_quantile(before, after, 0.5)
    return {
        "workers": workers,
        "hit_p50_ms_inside_gateway": inside * 1000 if inside is not None else None,
        "hit_p50_ms_client": sequential_hits.p50_ms,
        "hit_p99_ms_client": sequential_hits.p99_ms,
        "hits_per_s_c32": loaded.throughput,
        "hit_p99_ms_c32": loaded.p99_ms,
        "hit_errors_c32": loaded.errors,
        "triton_direct_p50_ms": direct.p50_ms,
        "gateway_miss_p50_ms": through.p50_ms,
        "miss_overhead_p50_ms": through.p50_ms - direct.p50_ms,
    }


def run(repository: Path, out: Path, workers: tuple[int, ...] = (1, 2), duration_s: float = 5.0,
        sequential: int = 500) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure_workers(repository, Path(tmp), w, duration_s, sequential) for w in workers]
    result = {"model": "digits", "rows": rows}
    (out / "gateway.json").write_text(json.dumps(result, indent=2))
    (out / "gateway.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    def f(value, digits=2):
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [
        "# Gateway overhead (digits)",
        "",
        (
            "| workers | hit p50 inside gateway ms | hit p50 client ms | hits/s at c32 | hit p99 c32 ms "
            "| Triton direct p50 ms | gateway miss p50 ms | miss overhead p50 ms |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['workers']} | {f(r['hit_p50_ms_inside_gateway'], 3)} | {f(r['hit_p50_ms_client'], 3)} "
            f"| {f(r['hits_per_s_c32'], 0)} | {f(r['hit_p99_ms_c32'])} | {f(r['triton_direct_p50_ms'], 3)} "
            f"| {f(r['gateway_miss_p50_ms'], 3)} | {f(r['miss_overhead_p50_ms'], 3)} |"
        )
    return "\n".join(lines) + "\n"

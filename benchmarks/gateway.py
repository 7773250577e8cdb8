"""The gateway's own cost: cache-hit latency and throughput, and what a miss adds to Triton.

Hits (HTTP, the Python gateway), for each configuration (worker count, pinned to CPUs or not) on a
fresh local stack:
- hit latency inside the gateway: the median of `gateway_request_duration_seconds` (measured from
  the ASGI call to the last byte sent) over sequential hits, interpolated in its buckets;
- hit throughput: one cached body at concurrency 32, with wrk when installed (a Python generator
  would take a core of the 2 from the gateway), else the closed-loop aiohttp generator.

Misses (gRPC, gateway-grpc), once, on a fresh stack: build/paired-infer (benchmarks/paired_infer,
Go) calls ModelInfer at concurrency 1 with a fresh input each time on Triton's gRPC port, on
gateway-grpc (one Go thread, as the local stack runs it, and two), on gateway-grpc with the cache
off, and on a do-nothing Python gRPC pass-through proxy (benchmarks.passthrough: the floor of any
Python gRPC front). The targets take turns in blocks of 20 calls, so a drift of the machine lands
on all of them alike (p50s taken one target after another, as perf_analyzer did here before,
moved by up to 0.4 ms between targets). A target's overhead is the median over runs of its median
paired difference with Triton direct; it still moves with the VM's own state between runs, so the
report gives their range too.

perf_analyzer over HTTP (`-i http`, the tritonclient 2.51 binary), once, on a fresh stack, at
concurrency 1 for a fixed count of requests: Triton's own HTTP port and the gateway's, each
request a new image (misses) as binary tensor data; the gateway with one image (hits) as binary
data and as JSON, inputs and outputs alike (`--input-tensor-format`, `--output-tensor-format`).
These are client-side latencies, perf_analyzer's own C++ client taking part of the 2 cores.

Writes gateway.json and gateway.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen, passthrough, perf, wrk
from benchmarks.hardware import local_hardware
from benchmarks.payloads import digits_body, digits_image, unique_id
from benchmarks.scrape import scrape
from localstack.probes import http_ok
from localstack.processes import wait_until
from localstack.stack import GATEWAY_GRPC_BINARY, LocalStack, StackPorts

ROUTE = "/predict"
TRITON = "Triton direct"
PASSTHROUGH = "Python gRPC pass-through"
UNCACHED = "gateway-grpc, cache off (1 Go thread)"
PAIRED_INFER = Path(__file__).resolve().parents[1] / "build" / "paired-infer"
HIT_BATCH = 64  # rows of the batched hit rows of the perf_analyzer -i http table


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


def histogram_quantile(
    before: dict[float, float], after: dict[float, float], q: float
) -> float | None:
    """Prometheus-style linear interpolation of quantile `q` over the samples between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=False):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return None


def measure_hits(
    repository: Path, work: Path, config: Configuration, duration_s: float, sequential: int
) -> dict:
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
            loaded = wrk.run(
                predict, hot, concurrency=32, duration_s=duration_s, work_dir=work / name
            )
        else:
            loaded = loadgen.run_http(predict, lambda: hot, concurrency=32, duration_s=duration_s)
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
    }


@contextmanager
def gateway_grpc(stack: LocalStack, threads: int, **env: str) -> Iterator[str]:
    """One more gateway-grpc on free ports in front of the stack's Triton and Redis: its address."""
    ports = StackPorts.free()
    env = {
        **stack.gateway_environment(),
        "GOMAXPROCS": str(threads),
        "GATEWAY_GRPC_PORT": str(ports.gateway_grpc),
        "GATEWAY_GRPC_METRICS_PORT": str(ports.gateway_grpc_metrics),
        **env,
    }
    process = subprocess.Popen([str(GATEWAY_GRPC_BINARY)], env=env, stderr=subprocess.DEVNULL)
    try:
        if not wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ports.gateway_grpc_metrics}/readyz"), 10
        ):
            raise RuntimeError("gateway-grpc did not become ready")
        yield f"127.0.0.1:{ports.gateway_grpc}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def paired(addresses: list[str], calls: int) -> dict:
    """One run of build/paired-infer: each address's p50 and its paired overhead over the first."""
    if not PAIRED_INFER.exists():
        raise FileNotFoundError(f"{PAIRED_INFER} is missing: make paired-infer")
    done = subprocess.run(
        [str(PAIRED_INFER), "-targets", ",".join(addresses), "-calls", str(calls)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"paired-infer failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def measure_misses(repository: Path, work: Path, rounds: int, calls: int = 1000) -> dict:
    """Each target's p50 per run, and its median paired overhead over Triton direct."""
    stack = LocalStack(work / "stack-misses", repository, StackPorts.free())
    stack.start()
    try:
        triton = f"127.0.0.1:{stack.ports.triton_grpc}"
        with (
            passthrough.running(triton) as proxy,
            gateway_grpc(stack, threads=2) as two_threads,
            gateway_grpc(stack, threads=1, GATEWAY_CACHE_ENABLED="false") as uncached,
        ):
            targets = {
                TRITON: triton,
                "gateway-grpc, 1 Go thread (GOMAXPROCS=1)": f"127.0.0.1:{stack.ports.gateway_grpc}",
                "gateway-grpc, 2 Go threads": two_threads,
                UNCACHED: uncached,
                PASSTHROUGH: proxy,
            }
            runs = [paired(list(targets.values()), calls) for _ in range(rounds)]
    finally:
        stack.stop()
    rows = []
    for index, label in enumerate(targets):
        overheads = [run["paired_overhead_p50_ms"][index] for run in runs]
        rows.append(
            {
                "target": label,
                "p50_ms": [run["p50_ms"][index] for run in runs],
                "overhead_p50_ms": None if label == TRITON else statistics.median(overheads),
                "overhead_range_ms": None if label == TRITON else [min(overheads), max(overheads)],
            }
        )
    return {"rounds": rounds, "calls_per_target": calls, "rows": rows}


def image_rows(work: Path, name: str, count: int) -> Path:
    """perf_analyzer input data: `count` digits images no other run sends (one batch-1 row each)."""
    rows = [
        {"image": {"content": digits_image(unique_id()).ravel().tolist(), "shape": [1, 8, 8]}}
        for _ in range(count)
    ]
    return perf.write_input_data(work / f"{name}.json", rows)


def measure_perf_analyzer_http(repository: Path, work: Path, requests: int = 2000) -> dict:
    """perf_analyzer -i http at concurrency 1, `requests` each: Triton direct and the gateway's
    misses (a new image each) as binary data; the gateway's hits as binary data and as JSON, of
    one image and of HIT_BATCH copies of it (perf_analyzer -b)."""
    work.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(work / "stack-perf-http", repository, StackPorts.free())
    stack.start()
    try:
        triton = f"127.0.0.1:{stack.ports.triton_http}"
        gateway = f"127.0.0.1:{stack.ports.gateway_http}"
        hit = image_rows(work, "hit", 1)
        targets = {
            "Triton HTTP direct, misses, binary": (
                triton,
                image_rows(work, "triton", requests),
                "binary",
                1,
            ),
            "gateway HTTP, misses, binary": (
                gateway,
                image_rows(work, "misses", requests),
                "binary",
                1,
            ),
            "gateway HTTP, hits, binary": (gateway, hit, "binary", 1),
            "gateway HTTP, hits, JSON": (gateway, hit, "json", 1),
            # 64 rows: 16 KiB of FP32 in, 2.5 KiB out, where the tensor's encoding is a real cost
            f"gateway HTTP, hits of {HIT_BATCH} rows, binary": (gateway, hit, "binary", HIT_BATCH),
            f"gateway HTTP, hits of {HIT_BATCH} rows, JSON": (gateway, hit, "json", HIT_BATCH),
        }
        rows = []
        for label, (url, data, tensor_format, batch) in targets.items():
            measured = perf.run(
                "digits",
                url,
                1,
                data,
                work_dir=work / label.replace(" ", "-").replace(",", ""),
                protocol="http",
                # -x: hits leave Triton's statistics still, where perf_analyzer looks for the version
                extra=[
                    "-x",
                    "1",
                    "-b",
                    str(batch),
                    "--request-count",
                    str(requests),
                    "--input-tensor-format",
                    tensor_format,
                    "--output-tensor-format",
                    tensor_format,
                ],
            )
            rows.append(
                {
                    "target": label,
                    "p50_ms": measured.p50_ms,
                    "p99_ms": measured.p99_ms,
                    "throughput": measured.throughput,
                }
            )
    finally:
        stack.stop()
    return {"requests": requests, "concurrency": 1, "rows": rows}


def run(
    repository: Path,
    out: Path,
    workers: tuple[int, ...] = (1, 2),
    duration_s: float = 5.0,
    sequential: int = 500,
    pinned: bool = True,
    miss_rounds: int = 5,
    miss_calls: int = 1000,
    http_requests: int = 2000,
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            measure_hits(repository, Path(tmp), config, duration_s, sequential)
            for config in configurations(workers, pinned)
        ]
        misses = measure_misses(repository, Path(tmp), miss_rounds, miss_calls)
        http = measure_perf_analyzer_http(repository, Path(tmp) / "perf-http", http_requests)
    result = {
        "model": "digits",
        "hardware": local_hardware()["description"],
        "rows": rows,
        "misses": misses,
        "perf_analyzer_http": http,
    }
    (out / "gateway.json").write_text(json.dumps(result, indent=2))
    (out / "gateway.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    def f(value, digits=2):
        return "-" if value is None else f"{value:,.{digits}f}"

    generators = sorted({r.get("hit_load_generator", "aiohttp") for r in result["rows"]})
    misses = result["misses"]
    lines = [
        "# Gateway overhead (digits)",
        "",
        f"Hardware: {result.get('hardware', 'not recorded')}.",
        "",
        f"## Cache hits (HTTP `/predict`, hits/s at concurrency 32 with {' and '.join(generators)})",
        "",
        "| configuration | hit p50 inside gateway ms | hit p50 client ms | hits/s at c32 | hit p99 c32 ms |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['configuration']} | {f(r['hit_p50_ms_inside_gateway'], 3)} "
            f"| {f(r['hit_p50_ms_client'], 3)} | {f(r['hits_per_s_c32'], 0)} | {f(r['hit_p99_ms_c32'])} |"
        )
    lines += [
        "",
        f"## Misses (gRPC, `build/paired-infer` at concurrency 1, {misses['rounds']} runs of "
        f"{misses['calls_per_target']} calls per target)",
        "",
        "Each call has a fresh input; the targets take turns in blocks of 20 calls. A run's overhead "
        "is the median over its rounds of (the target's block median - Triton's block median in the "
        "same round); the table gives the median over runs. Cache off: gateway-grpc without Redis, "
        "what the cache lookup and write cost a miss. The pass-through proxy forwards bytes and does "
        "nothing else: the floor of any Python gRPC front.",
        "",
        "| target | p50 ms per run | overhead p50 ms (median) | overhead range ms |",
        "|---|---|---|---|",
    ]
    for r in misses["rows"]:
        spread = r["overhead_range_ms"]
        lines.append(
            f"| {r['target']} | {' / '.join(f(v, 3) for v in r['p50_ms'])} "
            f"| {f(r['overhead_p50_ms'], 3)} | {f(spread[0], 3) + ' to ' + f(spread[1], 3) if spread else '-'} |"
        )
    return "\n".join(lines + perf_analyzer_lines(result.get("perf_analyzer_http"))) + "\n"


def perf_analyzer_lines(http: dict | None) -> list[str]:
    """The report's perf_analyzer -i http section (none for results recorded before it existed)."""
    if not http:
        return []
    lines = [
        "",
        f"## perf_analyzer over HTTP (`-i http`, concurrency {http['concurrency']}, "
        f"{http['requests']:,} requests each)",
        "",
        "Client-side latency (perf_analyzer's own client on the same 2 cores). Misses: a new image "
        "per request; hits: one image (or "
        f"{HIT_BATCH} copies of it in one request). Throughput counts rows. Binary: the binary "
        "tensor data extension both ways; JSON: "
        "`--input-tensor-format json --output-tensor-format json`.",
        "",
        "| target | p50 ms | p99 ms | inferences/s |",
        "|---|---|---|---|",
    ]
    for r in http["rows"]:
        lines.append(
            f"| {r['target']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['throughput']:,.0f} |"
        )
    return lines

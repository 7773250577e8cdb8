"""A closed-loop HTTP load generator (asyncio + aiohttp): `concurrency` users, each sending its
next request as soon as the previous answer arrives, for a fixed duration after a warm-up.

Requests that start during the warm-up are not recorded. The same generator drives the naive
server and the gateway, so their numbers compare like for like.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field

import aiohttp
import numpy as np

from benchmarks.payloads import Body


@dataclass
class LoadResult:
    target: str
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    throughput: float  # successful responses per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    cache_hits: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        total = self.requests + self.errors
        return self.errors / total if total else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "error_rate": self.error_rate}


def summarize(
    target: str,
    concurrency: int,
    latencies_s: list[float],
    errors: int,
    duration_s: float,
    hits: int = 0,
    samples: list[str] | None = None,
) -> LoadResult:
    ms = np.asarray(latencies_s, dtype=float) * 1000
    pct = (lambda q: float(np.percentile(ms, q))) if len(ms) else (lambda q: float("nan"))
    return LoadResult(
        target=target,
        concurrency=concurrency,
        duration_s=duration_s,
        requests=len(ms),
        errors=errors,
        throughput=len(ms) / duration_s if duration_s else 0.0,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        mean_ms=float(ms.mean()) if len(ms) else float("nan"),
        cache_hits=hits,
        error_samples=(samples or [])[:5],
    )


async def _closed_loop(
    url: str, body: Body, concurrency: int, warmup_s: float, duration_s: float, timeout_s: float
) -> tuple[list[float], int, int, list[str], float]:
    latencies: list[float] = []
    errors = hits = 0
    samples: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    headers = {"content-type": "application/json"}
    start = time.perf_counter()
    record_from = start + warmup_s
    stop_at = record_from + duration_s

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def user() -> None:
            nonlocal errors, hits
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                data = body()
                try:
                    async with session.post(url, data=data, headers=headers) as response:
                        await response.read()
                        ok = response.status == 200
                        hit = response.headers.get("X-Cache") == "HIT"
                        status = response.status
                except (TimeoutError, aiohttp.ClientError) as error:
                    ok, hit, status = False, False, type(error).__name__
                done = time.perf_counter()
                if sent < record_from or done > stop_at + timeout_s:
                    continue
                if ok:
                    latencies.append(done - sent)
                    hits += hit
                else:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(str(status))

        await asyncio.gather(*(user() for _ in range(concurrency)))
    measured = max(time.perf_counter() - record_from, 1e-9)
    return latencies, errors, hits, samples, measured


def run_http(
    url: str,
    body: Body,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    timeout_s: float = 30.0,
    target: str = "",
) -> LoadResult:
    """Closed loop against `url` (POST /predict); returns throughput and latency percentiles."""
    latencies, errors, hits, samples, measured = asyncio.run(
        _closed_loop(url, body, concurrency, warmup_s, duration_s, timeout_s)
    )
    return summarize(target or url, concurrency, latencies, errors, measured, hits, samples)


def sequential_latency(url: str, body: Body, count: int) -> LoadResult:
    """`count` requests one after another (concurrency 1), no warm-up: latency of single calls."""
    return (
        run_http(url, body, 1, duration_s=0, warmup_s=0)
        if count <= 0
        else asyncio.run(_sequential(url, body, count))
    )


async def _sequential(url: str, body: Body, count: int) -> LoadResult:
    latencies, errors, hits = [], 0, 0
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for _ in range(count):
            data = body()
            sent = time.perf_counter()
            async with session.post(
                url, data=data, headers={"content-type": "application/json"}
            ) as r:
                await r.read()
            if r.status == 200:
                latencies.append(time.perf_counter() - sent)
                hits += r.headers.get("X-Cache") == "HIT"
            else:
                errors += 1
        elapsed = time.perf_counter() - started
    return summarize(url, 1, latencies, errors, elapsed, hits)


# ---------------------------------------------------------------------- gRPC (KServe v2)
async def _grpc_closed_loop(
    target: str,
    model: str,
    make_inputs,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    timeout_s: float,
):
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(target)
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    start = time.perf_counter()
    record_from, stop_at = start + warmup_s, start + warmup_s + duration_s

    async def user() -> None:
        nonlocal errors
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            inputs = make_inputs(grpcclient)
            try:
                await client.infer(model, inputs, client_timeout=timeout_s)
                ok, why = True, ""
            except Exception as error:  # InferenceServerException, transport errors
                ok, why = False, str(error)[:120]
            done = time.perf_counter()
            if sent < record_from:
                continue
            if ok:
                latencies.append(done - sent)
            else:
                errors += 1
                if len(samples) < 5:
                    samples.append(why)

    try:
        await asyncio.gather(*(user() for _ in range(concurrency)))
    finally:
        await client.close()
    return latencies, errors, samples, max(time.perf_counter() - record_from, 1e-9)


def grpc_inputs(kind: str):
    """A factory of distinct single-row KServe inputs for tritonclient.grpc(.aio)."""
    from benchmarks import payloads

    def make(grpcclient):
        n = payloads.unique_id()
        if kind == "image":
            array = payloads.digits_image(n)[None]
            tensor = grpcclient.InferInput("image", list(array.shape), "FP32")
        else:
            array = np.array([[payloads.sentence(n)]], dtype=object)
            tensor = grpcclient.InferInput("text", [1, 1], "BYTES")
        tensor.set_data_from_numpy(array)
        return [tensor]

    return make


def run_grpc(
    target: str,
    model: str,
    kind: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Closed loop over KServe v2 gRPC (tritonclient.grpc.aio), distinct inputs per request."""
    latencies, errors, samples, measured = asyncio.run(
        _grpc_closed_loop(
            target, model, grpc_inputs(kind), concurrency, warmup_s, duration_s, timeout_s
        )
    )
    return summarize(f"grpc://{target}", concurrency, latencies, errors, measured, 0, samples)

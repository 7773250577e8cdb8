"""Latency per batch size of an ONNX model in ONNX Runtime on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conversion.gate import session


def tile_batch(sample: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """`batch_size` rows made by repeating the sample's rows."""
    out = {}
    for name, array in sample.items():
        reps = -(-batch_size // len(array))
        out[name] = np.concatenate([array] * reps)[:batch_size]
    return out


def time_call(call: Callable[[], object], min_runs: int = 5, budget_s: float = 1.0) -> float:
    """Median seconds per call after one warm-up, within about `budget_s`."""
    call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_runs or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def latency_ms(
    path: Path,
    sample: dict[str, np.ndarray],
    batch_sizes: tuple[int, ...],
    threads: int = 0,
    budget_s: float = 0.5,
) -> dict[str, float]:
    """{batch size: median ms per batch} for the model at `path`."""
    sess = session(path, threads)
    out = {}
    for batch_size in batch_sizes:
        feed = tile_batch(sample, batch_size)
        out[str(batch_size)] = round(
            1000 * time_call(lambda feed=feed: sess.run(None, feed), 3, budget_s), 3
        )
    return out

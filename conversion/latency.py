"""Latency per batch size of an ONNX model in ONNX Runtime (an OpenVINO IR in OpenVINO) here."""

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
    return latency_table({"model": path}, sample, batch_sizes, threads, budget_s)["model"]


def latency_table(
    paths: dict[str, Path],
    sample: dict[str, np.ndarray],
    batch_sizes: tuple[int, ...],
    threads: int = 0,
    budget_s: float = 0.5,
    rounds: int = 3,
) -> dict[str, dict[str, float]]:
    """{model: {batch size: ms per batch}} of several models timed in turns, best round kept.

    Each model gets `budget_s` per batch size, split over `rounds`; taking turns and keeping each
    model's best round spreads a busy moment of a shared machine over all of them.
    """
    sessions = {name: session(path, threads) for name, path in paths.items()}
    table: dict[str, dict[str, float]] = {name: {} for name in paths}
    for batch_size in batch_sizes:
        feed = tile_batch(sample, batch_size)
        for _ in range(rounds):
            for name, sess in sessions.items():
                seconds = time_call(lambda s=sess, f=feed: s.run(None, f), 3, budget_s / rounds)
                best = table[name].get(str(batch_size), float("inf"))
                table[name][str(batch_size)] = min(best, round(1000 * seconds, 3))
    return table


def too_slow(
    kind: str, fp32_ms: dict[str, float], variant_ms: dict[str, float], noise_margin: float
) -> str | None:
    """Why a variant is not worth serving on this hardware, or None when it is.

    Judged on the median of its latency ratios to FP32 over the measured batch sizes (one busy
    moment of a shared machine moves one batch size, not the median). INT8 trades accuracy for
    speed, so it must be faster than FP32 beyond the margin (median <= 1 / (1 + margin));
    another variant (FP16: kept for GPU hosts) only must not be slower beyond it (median <=
    1 + margin). Latencies are {batch size: ms}.
    """
    ratios = {b: variant_ms[b] / fp32_ms[b] for b in fp32_ms if fp32_ms[b] > 0 and b in variant_ms}
    if not ratios:
        return None
    median = float(np.median(list(ratios.values())))
    each = ", ".join(f"b{b} {r:.2f}x" for b, r in ratios.items())
    if "int8" in kind and median > 1.0 / (1.0 + noise_margin):
        return f"not faster than FP32 here ({each} its latency; median {median:.2f}x)"
    if "int8" not in kind and median > 1.0 + noise_margin:
        return f"slower than FP32 here ({each} its latency; median {median:.2f}x)"
    return None

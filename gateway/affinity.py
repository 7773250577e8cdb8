"""Pinning a gateway worker process, every thread of it, to one CPU.

A gRPC call in Python crosses several threads (gRPC's event-engine threads, the asyncio poller,
the event loop); on a virtual machine each cross-CPU wake-up is an interprocessor interrupt. On
one CPU those hand-offs are plain context switches: a miss through the gateway measured about
0.25 ms faster at concurrency 1 on the 2-core box, with the same hits/s (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re


def worker_index() -> int:
    """0 for a single-process gateway; uvicorn's worker processes are named SpawnProcess-1, -2, ..."""
    match = re.search(r"-(\d+)$", multiprocessing.current_process().name)
    return int(match.group(1)) - 1 if match else 0


def pin_process(cpu: int) -> None:
    """Restrict every existing thread of this process to `cpu`; threads started later inherit it."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), {cpu})


def pin_worker(cpus: list[int]) -> int | None:
    """Pin this worker to its CPU of `cpus` (round-robin by worker index) and return that CPU;
    None when `cpus` is empty. ValueError when the CPU is outside this process's affinity."""
    if not cpus:
        return None
    cpu = cpus[worker_index() % len(cpus)]
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise ValueError(
            f"GATEWAY_CPUS names CPU {cpu}, but this process may only use {sorted(allowed)}"
        )
    pin_process(cpu)
    return cpu

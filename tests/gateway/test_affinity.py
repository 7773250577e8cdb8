"""A pinned worker runs every thread, including ones started before pinning, on its one CPU."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from gateway import affinity

PIN_IN_A_CHILD = """
import os, sys, threading, time
from gateway.affinity import pin_worker
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()  # a thread that exists before pinning
cpu = pin_worker([int(sys.argv[1])])
allowed = [os.sched_getaffinity(int(tid)) for tid in os.listdir("/proc/self/task")]
print(cpu, len(allowed), all(a == {cpu} for a in allowed))
"""


@pytest.mark.parametrize(
    ("name", "index"), [("MainProcess", 0), ("SpawnProcess-1", 0), ("SpawnProcess-3", 2)]
)
def test_the_worker_index_comes_from_uvicorns_process_name(monkeypatch, name, index):
    monkeypatch.setattr(
        affinity.multiprocessing, "current_process", lambda: SimpleNamespace(name=name)
    )
    assert affinity.worker_index() == index


def test_workers_take_the_cpus_round_robin(monkeypatch):
    pinned = []
    monkeypatch.setattr(affinity, "pin_process", pinned.append)
    monkeypatch.setattr(affinity.os, "sched_getaffinity", lambda pid: {3, 5})
    for name in ("SpawnProcess-1", "SpawnProcess-2", "SpawnProcess-3"):
        monkeypatch.setattr(
            affinity.multiprocessing, "current_process", lambda n=name: SimpleNamespace(name=n)
        )
        affinity.pin_worker([3, 5])
    assert pinned == [3, 5, 3]


def test_no_cpus_means_no_pinning(monkeypatch):
    monkeypatch.setattr(affinity, "pin_process", lambda cpu: pytest.fail("pinned"))
    assert affinity.pin_worker([]) is None


def test_a_cpu_the_process_may_not_use_is_refused_with_the_allowed_ones(monkeypatch):
    monkeypatch.setattr(affinity, "pin_process", lambda cpu: pytest.fail("pinned"))
    with pytest.raises(ValueError, match=r"CPU 4096, but this process may only use \["):
        affinity.pin_worker([4096])


def test_every_thread_of_the_process_is_pinned():
    cpu = max(os.sched_getaffinity(0))
    out = subprocess.run(
        [sys.executable, "-c", PIN_IN_A_CHILD, str(cpu)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(cpu), "2", "True"]

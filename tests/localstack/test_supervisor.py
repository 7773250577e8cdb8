"""The supervisor restarts what dies, with a back-off, and never spins on a part that cannot run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from localstack.probes import tcp_ready
from localstack.processes import ProcessRegistry, wait_until
from localstack.stack import LocalStack, StackPorts
from localstack.supervisor import Backoff, SupervisorState


def test_the_back_off_doubles_up_to_its_ceiling_and_resets_after_a_stable_run():
    backoff = Backoff(initial_s=0.5, max_s=30.0, stable_after_s=30.0)
    delays = [backoff.after_exit(uptime_s=1.0) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.after_exit(uptime_s=30.0) == 0.5
    assert backoff.after_exit(uptime_s=1.0) == 1.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def supervised_redis(tmp_path, model_repository):
    """A supervisor owning one redis-server on a free port: (registry, port, supervisor pid)."""
    ports = StackPorts.free()
    component = LocalStack(tmp_path, model_repository, ports).component("redis")
    registry = ProcessRegistry(tmp_path)
    command = [sys.executable, "-m", "localstack.supervisor", "--run-dir", str(tmp_path)]
    pid = registry.start("supervisor", command, stdin=json.dumps([asdict(component)]).encode())
    assert wait_until(lambda: (s := SupervisorState.load(tmp_path)) is not None and s.ready, 30)
    yield registry, ports.redis, pid
    registry.stop("supervisor")
    registry.stop("redis")


def redis_state(run_dir: Path):
    return SupervisorState.load(run_dir).components["redis"]


@pytest.mark.integration
def test_a_part_that_keeps_dying_is_retried_ever_more_slowly_and_comes_back_when_it_can(
    supervised_redis, tmp_path
):
    registry, port, supervisor = supervised_redis
    os.kill(registry.pid("redis"), signal.SIGKILL)
    with socket.socket() as squatter:  # the port taken: every restart of redis-server fails
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        assert wait_until(lambda: _bind(squatter, port), 5, interval_s=0.01)
        squatter.listen()
        cpu_before, started = cpu_seconds(supervisor), time.monotonic()
        assert wait_until(lambda: redis_state(tmp_path).restarts >= 4, 30)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(supervisor) - cpu_before

    log = registry.log_path("supervisor").read_text()
    delays = [float(d) for d in re.findall(r"redis: restart \d+ in ([\d.]+) s", log)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert "exit code 1" in log  # each failed run is logged with its status
    assert elapsed >= 3.5  # 0.5 + 1 + 2 s of back-off before the fourth restart
    assert cpu < 0.25 * elapsed, (cpu, elapsed)  # waiting, not spinning
    assert wait_until(lambda: tcp_ready(port, b"PING\r\n", b"+PONG"), 30)
    assert wait_until(lambda: redis_state(tmp_path).state == "running", 10)


def _bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


@pytest.mark.integration
def test_a_part_that_dies_while_the_stack_starts_is_started_again(tmp_path, model_repository):
    from dataclasses import replace

    ports = StackPorts.free()
    redis = LocalStack(tmp_path, model_repository, ports).component("redis")
    marker = tmp_path / "died-once"
    # dies at its first start (as tritonserver's python backend has, on a shared-memory lock)
    first_dies = f'test -e {marker} || {{ touch {marker}; exit 3; }}; exec "$@"'
    flaky = replace(redis, command=["sh", "-c", first_dies, "sh", *redis.command])
    registry = ProcessRegistry(tmp_path)
    command = [sys.executable, "-m", "localstack.supervisor", "--run-dir", str(tmp_path)]
    registry.start("supervisor", command, stdin=json.dumps([asdict(flaky)]).encode())
    try:
        assert wait_until(lambda: (s := SupervisorState.load(tmp_path)) is not None and s.ready, 60)
        assert redis_state(tmp_path).restarts == 1 and marker.exists()
        assert tcp_ready(ports.redis, b"PING\r\n", b"+PONG")
        assert (
            "redis: exited while starting; start 2" in registry.log_path("supervisor").read_text()
        )
    finally:
        registry.stop("supervisor")
        registry.stop("redis")

"""`up` starts what `down` stops, exactly; a part that dies comes back by itself; failures are one
line, not a stack trace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from localstack.errors import StackError
from localstack.probes import tcp_ready
from localstack.processes import ProcessRegistry, wait_until
from localstack.stack import COMPONENTS, SUPERVISOR, LocalStack, StackPorts
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        members.append(int(entry.name))
            except (ProcessLookupError, FileNotFoundError):
                continue
    return members


def test_stop_leaves_no_process_of_the_stack_running_including_python_backend_stubs(make_stack):
    stack = make_stack()
    pids = {name: stack.local.processes.pid(name) for name in (*COMPONENTS, SUPERVISOR)}
    assert all(pids.values())
    assert len(group_members(pids["triton"])) >= 2  # the server and at least one stub

    assert sorted(stack.local.stop()) == sorted(COMPONENTS)
    assert all(group_members(pid) == [] for pid in pids.values())
    assert stack.local.processes.names() == []


def test_down_stops_every_part_even_when_the_supervisor_was_killed(make_stack):
    stack = make_stack()
    pids = {name: stack.local.processes.pid(name) for name in COMPONENTS}
    os.kill(stack.local.processes.pid(SUPERVISOR), signal.SIGKILL)
    assert wait_until(lambda: not stack.local.processes.running(SUPERVISOR), 10)
    assert all(stack.local.processes.running(name) for name in COMPONENTS)

    assert sorted(stack.local.stop()) == sorted(COMPONENTS)
    assert all(group_members(pid) == [] for pid in pids.values())


def test_a_recycled_pid_is_not_mistaken_for_a_stack_process(tmp_path):
    registry = ProcessRegistry(tmp_path)
    registry.pid_dir.mkdir(parents=True)
    (registry.pid_dir / "redis.pid").write_text(f"{os.getpid()} 1\n")  # our pid, another start time
    assert registry.pid("redis") is None
    assert registry.stop("redis") is False


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "localstack", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"},
        timeout=120,
    )


def fresh_image() -> list:
    return np.random.default_rng().random((1, 1, 8, 8), dtype=np.float32).tolist()


def serves_http(stack) -> bool:
    try:
        body = {"model": "digits", "inputs": {"image": fresh_image()}}
        return stack.predict(body, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def serves_grpc(stack) -> bool:
    image = grpcclient.InferInput("image", [1, 1, 8, 8], "FP32")
    image.set_data_from_numpy(np.array(fresh_image(), np.float32))
    try:
        grpcclient.InferenceServerClient(stack.gateway_grpc_url).infer("digits", [image])
    except Exception:
        return False
    return True


def caches(stack) -> bool:
    body = {"model": "digits", "inputs": {"image": fresh_image()}}
    if not serves_http(stack) or stack.predict(body).status_code != 200:
        return False
    return wait_until(lambda: stack.predict(body).headers["X-Cache"] == "HIT", 2)


def test_each_part_killed_comes_back_by_itself_and_status_counts_the_restart(make_stack):
    stack = make_stack(GATEWAY_REDIS_RETRY_AFTER_S="0.2")
    service_returned = {
        "redis": lambda: tcp_ready(stack.redis_port, b"PING\r\n", b"+PONG") and caches(stack),
        "triton": lambda: serves_http(stack),
        "gateway": lambda: serves_http(stack),
        "gateway-grpc": lambda: serves_grpc(stack),
    }
    for name, returned in service_returned.items():
        pid = stack.local.processes.pid(name)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda n=name, p=pid: stack.local.processes.pid(n) not in (None, p), 30)
        assert wait_until(returned, 90), f"{name} did not come back"
        assert group_members(pid) == []  # nothing of the killed process is left (Triton's stubs)

    status = run_cli("status", "--run-dir", str(stack.local.run_dir), cwd=REPO_ROOT)
    for name in COMPONENTS:
        row = next(line for line in status.stdout.splitlines() if f" {name} " in line)
        assert "running" in row and " 1 " in row and "killed by signal 9 (SIGKILL)" in row, row
    log = stack.local.processes.log_path(SUPERVISOR).read_text()
    assert log.count("exited after") == 4 and log.count("killed by signal 9 (SIGKILL)") == 4


def test_a_part_stopped_on_purpose_stays_stopped_until_started_again(make_stack):
    stack = make_stack()
    assert stack.local.stop_component("redis", signal.SIGKILL)
    assert stack.local.component_states()["redis"].state == "stopped"
    assert not wait_until(lambda: tcp_ready(stack.redis_port, b"PING\r\n", b"+PONG"), 2.0)

    stack.local.start_component("redis")
    assert tcp_ready(stack.redis_port, b"PING\r\n", b"+PONG")
    assert stack.local.component_states()["redis"].restarts == 0  # asked for, not a crash


def test_up_without_models_prints_one_clear_line_and_fails(tmp_path):
    result = run_cli(
        "up",
        "--free-ports",  # a stack of `make up` may hold the default ports
        "--run-dir",
        str(tmp_path / "run"),
        "--model-repository",
        str(tmp_path / "none"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "does not exist: run `make convert` first" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_up_on_a_port_in_use_names_it_and_starts_nothing(tmp_path):
    ports = StackPorts.free()
    local = LocalStack(tmp_path / "run", REPO_ROOT / "model_repository", ports)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.triton_http))
        taken.listen()
        with pytest.raises(StackError, match=rf"ports already in use: \[{ports.triton_http}\]"):
            local.start()
    assert local.processes.names() == []


def test_down_with_nothing_running_says_so(tmp_path):
    result = run_cli("down", "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0 and "nothing was running" in result.stdout


def test_up_without_gateway_grpc_built_prints_one_clear_line_and_starts_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("localstack.stack.GATEWAY_GRPC_BINARY", tmp_path / "gateway-grpc")
    stack = LocalStack(tmp_path / "run", REPO_ROOT / "model_repository", StackPorts.free())
    with pytest.raises(StackError, match=r"gateway-grpc is not built: run `make gateway-grpc`"):
        stack.start()
    assert stack.processes.names() == []


def test_the_python_gateway_runs_every_thread_on_one_cpu(stack):
    pid = stack.local.component_states()["gateway"].pid
    threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]

    cpus = {frozenset(os.sched_getaffinity(tid)) for tid in threads}

    assert cpus == {frozenset({min(os.sched_getaffinity(0))})}

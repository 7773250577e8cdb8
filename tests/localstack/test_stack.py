"""`up` starts what `down` stops, exactly; failures are one line, not a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localstack.errors import StackError
from localstack.processes import ProcessRegistry
from localstack.stack import COMPONENTS, LocalStack, StackPorts
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
    pids = {name: stack.local.processes.pid(name) for name in COMPONENTS}
    assert all(pids.values())
    assert len(group_members(pids["triton"])) >= 2  # the server and at least one stub

    assert sorted(stack.local.stop()) == sorted(COMPONENTS)
    assert all(group_members(pid) == [] for pid in pids.values())
    assert stack.local.processes.names() == []


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


def test_up_without_models_prints_one_clear_line_and_fails(tmp_path):
    result = run_cli(
        "up",
        "--run-dir",
        str(tmp_path / "run"),
        "--model-repository",
        str(tmp_path / "none"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "does not exist: run `make convert` first" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_down_with_nothing_running_says_so(tmp_path):
    result = run_cli("down", "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0 and "nothing was running" in result.stdout


def test_up_without_gateway_grpc_built_prints_one_clear_line_and_fails(tmp_path, monkeypatch):
    monkeypatch.setattr("localstack.stack.GATEWAY_GRPC_BINARY", tmp_path / "gateway-grpc")
    stack = LocalStack(tmp_path / "run", REPO_ROOT / "model_repository", StackPorts.free())
    with pytest.raises(StackError, match=r"gateway-grpc is not built: run `make gateway-grpc`"):
        stack.start_component("gateway-grpc")

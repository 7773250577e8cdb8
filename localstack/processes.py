"""Background processes recorded in pid files, so `down` stops exactly what `up` started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localstack.errors import StackError


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards against a recycled pid), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


class ProcessRegistry:
    """Starts processes in their own session and records `pid start-time` under `<run_dir>/pids`."""

    def __init__(self, run_dir: Path) -> None:
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.running(name):
            raise StackError(f"{name} is already running (pid file {self.pid_dir / name}.pid)")
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        (self.pid_dir / f"{name}.pid").write_text(f"{process.pid} {_start_time(process.pid)}\n")
        return process.pid

    def pid(self, name: str) -> int | None:
        """The recorded pid if that very process is still alive."""
        path = self.pid_dir / f"{name}.pid"
        if not path.exists():
            return None
        pid_text, started = path.read_text().split()
        pid = int(pid_text)
        if _start_time(pid) != started:
            path.unlink(missing_ok=True)
            return None
        try:  # a zombie child still has a /proc entry; reap it if it is ours
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                path.unlink(missing_ok=True)
                return None
        except ChildProcessError:
            pass
        return pid

    def running(self, name: str) -> bool:
        return self.pid(name) is not None

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.pid_dir.glob("*.pid")) if self.pid_dir.exists() else []

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> bool:
        """Signal the process group of `name`, wait, then SIGKILL it; True if it was running."""
        pid = self.pid(name)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        if not wait_until(lambda: not self._group_alive(pid), timeout_s):
            os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not self._group_alive(pid), 5.0)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        return True

    def _group_alive(self, pgid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid and _state(int(entry.name)) != "Z":
                        return True
                except (ProcessLookupError, PermissionError):
                    continue
        return False

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_path(name)
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()

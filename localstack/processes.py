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
        """`<run_dir>/logs/<name>.log`, where `start` appends the process's stdout and stderr."""
        return self.log_dir / f"{name}.log"

    def start(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> int:
        """Start `command` in its own session, output appended to its log; record and return its pid.

        `stdin`: bytes written to its standard input, which is then closed (default: /dev/null).
        Raises StackError if `name` is already running, OSError if `command` cannot be executed.
        """
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.running(name):
            raise StackError(f"{name} is already running (pid file {self.pid_dir / name}.pid)")
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        if stdin is not None:
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(stdin)
        path = self.pid_dir / f"{name}.pid"
        staged = path.with_suffix(".tmp")
        staged.write_text(f"{process.pid} {_start_time(process.pid)}\n")
        staged.replace(path)  # readers in other processes never see a half-written file
        return process.pid

    def pid(self, name: str) -> int | None:
        """The recorded pid if that very process is still alive (same pid and kernel start time);
        otherwise None, and a stale pid file is removed."""
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
        """True while the process recorded for `name` lives (see `pid`)."""
        return self.pid(name) is not None

    def names(self) -> list[str]:
        """The names with a pid file, sorted, whether or not their process still lives."""
        return sorted(p.stem for p in self.pid_dir.glob("*.pid")) if self.pid_dir.exists() else []

    def forget(self, name: str) -> None:
        """Remove `name`'s pid file, if any; its process, if alive, is not signalled."""
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> bool:
        """Signal the process group of `name`, wait up to `timeout_s` seconds, then SIGKILL it;
        True if it was running."""
        pid = self.pid(name)
        if pid is None:
            return False
        stop_group(pid, sig, timeout_s)
        self.forget(name)
        return True

    def log_tail(self, name: str, lines: int = 15) -> str:
        """The last `lines` lines of `name`'s log, undecodable bytes replaced; "" without a log."""
        path = self.log_path(name)
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` lives (zombies aside; our own child is reaped)."""
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


def stop_group(pgid: int, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
    """Send `sig` to process group `pgid`, wait until it is gone, SIGKILL what is left after
    `timeout_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    if not wait_until(lambda: not group_alive(pgid), timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        wait_until(lambda: not group_alive(pgid), 5.0)


def describe_exit(status: int) -> str:
    """A wait status as words: 'exit code 1', 'killed by signal 9 (SIGKILL)'."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by signal {number} ({signal.Signals(number).name})"
        except ValueError:  # a real-time signal has no name
            return f"killed by signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `condition` every `interval_s` until it holds (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()

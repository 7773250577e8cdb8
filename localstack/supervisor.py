"""The local stack's supervisor: one process that owns the components (redis-server, tritonserver,
gateway, gateway-grpc), starts them in order, and restarts any that dies.

`LocalStack.start` runs `python -m localstack.supervisor --run-dir RUN` and writes the components
(JSON: name, command, environment, readiness probe) to its standard input. The supervisor starts
each component and waits until it is ready before the next (the first failure is recorded as
`error` and stops everything), then watches them:

- a component that exits (crash, SIGKILL, OOM kill) is restarted after a back-off: 0.5 s, doubling
  with each exit up to 30 s, back to 0.5 s once a run lasted 30 s; what its process group left
  behind (Triton's python-backend stubs) is killed first, and each exit is logged with its status
  in `RUN/logs/supervisor.log` and the component's own log;
- `RUN/hold/<name>` (a signal number) asks it to stop that component with that signal and keep it
  stopped; removing the file starts it again (tests stop Triton on purpose this way);
- SIGTERM or SIGINT stop every component, in reverse order, and then the supervisor.

What it sees is in `RUN/supervisor.json` (`SupervisorState`), which `python -m localstack status`
prints. Children's pids are also in `RUN/pids/` (`ProcessRegistry`), so `make down` stops them
even if the supervisor itself was killed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localstack.probes import Probe
from localstack.processes import ProcessRegistry, describe_exit, stop_group, wait_until

TICK_S = 0.1
# A part that dies while the stack starts is launched again this many times in all: tritonserver's
# python backend has aborted at start on a shared-memory lock (boost::interprocess::lock_exception)
# on a heavily loaded machine, and a second start loaded every model.
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Component:
    """One supervised process: its command line, environment (None: inherited) and probe."""

    name: str
    command: list[str]
    env: dict[str, str] | None
    probe: Probe

    @classmethod
    def from_json(cls, data: dict) -> Component:
        """The inverse of `dataclasses.asdict` read back from JSON (the probe's `urls` list
        becomes a tuple again); KeyError for a missing field."""
        probe = data["probe"]
        return cls(
            data["name"],
            data["command"],
            data["env"],
            Probe(**{**probe, "urls": tuple(probe["urls"])}),
        )


@dataclass
class Backoff:
    """Delay before each restart: `initial_s`, doubled per exit up to `max_s`, reset to
    `initial_s` when the run before the exit lasted `stable_after_s`."""

    initial_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = 30.0
    next_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.next_s = self.initial_s

    def after_exit(self, uptime_s: float) -> float:
        """Seconds to wait before restarting a process that ran `uptime_s` seconds."""
        if uptime_s >= self.stable_after_s:
            self.next_s = self.initial_s
        delay = self.next_s
        self.next_s = min(self.next_s * 2, self.max_s)
        return delay


@dataclass
class ComponentState:
    """state: starting (not ready yet), running (ready), restarting (waiting out the back-off),
    stopped (held, or the stack is down)."""

    state: str = "starting"
    pid: int | None = None
    restarts: int = 0
    last_exit: str | None = None


@dataclass
class SupervisorState:
    """The supervisor's view, saved as `<run_dir>/supervisor.json` on every change."""

    pid: int
    ready: bool = False
    error: str | None = None
    components: dict[str, ComponentState] = field(default_factory=dict)

    @staticmethod
    def path(run_dir: Path) -> Path:
        """`<run_dir>/supervisor.json`."""
        return run_dir / "supervisor.json"

    def save(self, run_dir: Path) -> None:
        """Write the state as JSON to `path(run_dir)` atomically (a temporary file renamed over
        it); OSError if `run_dir` is not writable."""
        staged = self.path(run_dir).with_suffix(".tmp")
        staged.write_text(json.dumps(asdict(self), indent=1))
        staged.replace(self.path(run_dir))  # readers never see a half-written file

    @classmethod
    def load(cls, run_dir: Path) -> SupervisorState | None:
        """The last saved state, or None if there is none."""
        try:
            data = json.loads(cls.path(run_dir).read_text())
        except FileNotFoundError:
            return None
        components = {n: ComponentState(**s) for n, s in data.pop("components").items()}
        return cls(**data, components=components)


def hold_path(run_dir: Path, name: str) -> Path:
    """The control file that keeps `name` stopped while it exists (content: a signal number)."""
    return run_dir / "hold" / name


class Supervisor:
    """Starts `components` in order and keeps them running (see the module docstring)."""

    def __init__(self, run_dir: Path, components: list[Component], ready_timeout_s: float):
        self.run_dir = run_dir
        self.components = components
        self.ready_timeout_s = ready_timeout_s
        self.registry = ProcessRegistry(run_dir)
        self.state = SupervisorState(
            pid=os.getpid(), components={c.name: ComponentState() for c in components}
        )
        self.backoffs = {c.name: Backoff() for c in components}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.stopping = False

    def run(self) -> int:
        """Start, supervise until SIGTERM/SIGINT, stop; 0, or 1 if the start failed."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        try:
            if self._start_all():
                self.state.ready = True
                self._save()
                while not self.stopping:
                    self._tick()
                    time.sleep(TICK_S)
        finally:
            self._stop_all()
        return 0 if self.state.error is None else 1

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _start_all(self) -> bool:
        return all(self._start_one(component) for component in self.components)

    def _start_one(self, component: Component) -> bool:
        """Launch `component` and wait until its probe answers; one that exits while starting is
        launched again, up to START_ATTEMPTS times, as a later crash would be. False, with the
        error and its log tail in the state, when it stays down or is not ready in time."""
        status = self.state.components[component.name]
        for attempt in range(START_ATTEMPTS):
            if attempt:
                status.restarts += 1
                self._log(f"{component.name}: exited while starting; start {attempt + 1}")
            self._launch(component)
            wait_until(
                lambda: (
                    self.stopping
                    or status.pid is None
                    or self._reap(component) is not None
                    or component.probe.ready()
                ),
                self.ready_timeout_s,
            )
            if self.stopping:
                return False
            if status.pid is not None:
                break  # alive: ready, or not ready in time (no second try for that)
        if status.pid is None or not component.probe.ready():
            tail = self.registry.log_tail(component.name)
            self.state.error = f"{component.name} did not become ready; last log lines:\n{tail}"
            self._log(self.state.error)
            return False
        status.state = "running"
        self._save()
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        for component in self.components:
            status = self.state.components[component.name]
            held = _held_signal(hold_path(self.run_dir, component.name))
            uptime = self._reap(component) if status.pid is not None else None
            if uptime is not None and held is None:
                self._schedule_restart(component, uptime)
            elif held is not None and status.state != "stopped":
                self._stop(component, held)
            elif held is None and status.state == "stopped":
                self._launch(component)
            elif status.state == "restarting" and now >= self.restart_at[component.name]:
                status.restarts += 1
                self._launch(component)
            elif status.state == "starting" and component.probe.ready():
                status.state = "running"
            else:
                continue
            self._save()

    def _launch(self, component: Component) -> None:
        status = self.state.components[component.name]
        status.state = "starting"
        self.started_at[component.name] = time.monotonic()
        try:
            status.pid = self.registry.start(component.name, component.command, component.env)
        except OSError as error:  # e.g. the binary vanished: counts as an exit, retried
            status.pid = None
            status.last_exit = f"could not start: {error}"
            self._log(f"{component.name}: {status.last_exit}")
            self._schedule_restart(component, uptime_s=0.0)
            return
        self._log(f"{component.name}: started, pid {status.pid}")

    def _schedule_restart(self, component: Component, uptime_s: float) -> None:
        status = self.state.components[component.name]
        delay = self.backoffs[component.name].after_exit(uptime_s)
        self.restart_at[component.name] = time.monotonic() + delay
        status.state = "restarting"
        self._log(f"{component.name}: restart {status.restarts + 1} in {delay:g} s")

    def _reap(self, component: Component) -> float | None:
        """If `component` exited: clean up its group, record how it ended, return its uptime in s."""
        status = self.state.components[component.name]
        try:
            pid, code = os.waitpid(status.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: gone, status unknown
            pid, code = status.pid, -1
        if pid == 0:
            return None
        stop_group(status.pid, signal.SIGKILL, timeout_s=5.0)  # what it left behind
        uptime = time.monotonic() - self.started_at[component.name]
        status.last_exit = describe_exit(code) if code >= 0 else "gone"
        self._log(
            f"{component.name}: pid {status.pid} exited after {uptime:.1f} s: {status.last_exit}"
        )
        with self.registry.log_path(component.name).open("a") as log:
            log.write(f"==== supervisor: {component.name} exited: {status.last_exit}\n")
        status.pid = None
        self.registry.forget(component.name)
        return uptime

    def _stop(self, component: Component, sig: signal.Signals) -> None:
        status = self.state.components[component.name]
        if status.pid is not None:
            stop_group(status.pid, sig)
            status.last_exit = f"stopped on request ({sig.name})"
            self._log(f"{component.name}: pid {status.pid} {status.last_exit}")
            status.pid = None
            self.registry.forget(component.name)
        status.state = "stopped"

    def _stop_all(self) -> None:
        for component in reversed(self.components):
            status = self.state.components[component.name]
            if status.pid is not None:
                stop_group(status.pid)
                self._log(f"{component.name}: pid {status.pid} stopped")
                status.pid = None
                self.registry.forget(component.name)
            status.state = "stopped"
        self.state.ready = False
        self._save()

    def _save(self) -> None:
        self.state.save(self.run_dir)

    def _log(self, message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


def _held_signal(path: Path) -> signal.Signals | None:
    """The signal a hold file asks for (SIGTERM if it names none), or None without a hold."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return signal.Signals(int(text))
    except ValueError:
        return signal.SIGTERM


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m localstack.supervisor --run-dir RUN < components.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--ready-timeout-s", type=float, default=90.0)
    args = parser.parse_args(argv)
    components = [Component.from_json(item) for item in json.load(sys.stdin)]
    hold_dir = args.run_dir / "hold"
    hold_dir.mkdir(parents=True, exist_ok=True)
    for stale in hold_dir.iterdir():
        stale.unlink()
    return Supervisor(args.run_dir, components, args.ready_timeout_s).run()


if __name__ == "__main__":
    sys.exit(main())

"""Starts and stops the local stack: redis-server, tritonserver (python-backend twins), the gateway
(HTTP, Python) and gateway-grpc (its native gRPC front end), under one supervisor process
(`localstack.supervisor`) that restarts whichever dies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from localstack.errors import StackError
from localstack.probes import Probe, port_in_use
from localstack.processes import ProcessRegistry, wait_until
from localstack.supervisor import Component, ComponentState, SupervisorState, hold_path
from localstack.tritonserver import TritonInstallation, derive_local_repository, derive_model

COMPONENTS = ("redis", "triton", "gateway", "gateway-grpc")
SUPERVISOR = "supervisor"
GATEWAY_GRPC_BINARY = Path(__file__).resolve().parents[1] / "build" / "gateway-grpc"


@dataclass(frozen=True)
class StackPorts:
    """The TCP ports on 127.0.0.1 of each part of the local stack: by default the usual ones
    (gateway 8080-8082, Triton 8000-8002), Redis on 6380."""

    gateway_http: int = 8080
    gateway_grpc: int = 8081
    triton_http: int = 8000
    triton_grpc: int = 8001
    triton_metrics: int = 8002
    redis: int = 6380  # not 6379: a system Redis may already listen there
    gateway_grpc_metrics: int = 8082

    @classmethod
    def free(cls) -> StackPorts:
        """Ports the kernel reports free right now (for tests running beside a live stack)."""
        sockets = [socket.socket() for _ in range(len(asdict(cls())))]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


@dataclass
class LocalStack:
    """The local stack of one `run_dir` (logs, pid files, supervisor.json, the derived Triton
    repository) serving `model_repository` on `ports`. `gateway_env` adds to or overrides both
    front ends' GATEWAY_* variables; `ready_timeout_s`: seconds each part has to become ready."""

    run_dir: Path
    model_repository: Path
    ports: StackPorts = field(default_factory=StackPorts)
    gateway_env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 90.0

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir.resolve()
        self.model_repository = self.model_repository.resolve()
        self.processes = ProcessRegistry(self.run_dir)

    @property
    def urls(self) -> dict[str, str]:
        """Where each part listens, by the name `up` prints: a URL, or `host:port` for gRPC."""
        p = self.ports
        return {
            "gateway": f"http://127.0.0.1:{p.gateway_http}",
            "gateway gRPC": f"127.0.0.1:{p.gateway_grpc}",
            "gateway gRPC metrics": f"http://127.0.0.1:{p.gateway_grpc_metrics}/metrics",
            "triton HTTP": f"http://127.0.0.1:{p.triton_http}",
            "triton gRPC": f"127.0.0.1:{p.triton_grpc}",
            "triton metrics": f"http://127.0.0.1:{p.triton_metrics}/metrics",
            "redis": f"redis://127.0.0.1:{p.redis}/0",
        }

    def start(self) -> None:
        """Start the supervisor with every component; return once all are ready.

        Raises StackError (one clear line, or the log tail of the part that failed) when a port is
        taken, something is missing (binary, repository, build) or a part does not become ready;
        whatever was started is stopped again.
        """
        busy = [port for port in asdict(self.ports).values() if port_in_use(port)]
        if busy:
            raise StackError(f"ports already in use: {busy} (is a stack running? `make down`)")
        components = [self.component(name) for name in COMPONENTS]
        SupervisorState.path(self.run_dir).unlink(missing_ok=True)
        command = [
            *(sys.executable, "-m", "localstack.supervisor"),
            *("--run-dir", str(self.run_dir), "--ready-timeout-s", str(self.ready_timeout_s)),
        ]
        try:
            pid = self.processes.start(
                SUPERVISOR, command, stdin=json.dumps([asdict(c) for c in components]).encode()
            )
            self._wait_until_ready(pid)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, supervisor_pid: int) -> None:
        def settled() -> bool:
            state = self.supervisor_state()
            mine = state is not None and state.pid == supervisor_pid
            return (
                mine and (state.ready or state.error is not None)
            ) or not self.processes.running(SUPERVISOR)

        wait_until(settled, self.ready_timeout_s * len(COMPONENTS) + 30)
        state = self.supervisor_state()
        if state is None or state.pid != supervisor_pid or not state.ready:
            log = self.processes.log_path(SUPERVISOR)
            raise StackError(
                state.error if state and state.error else f"the stack did not start; see {log}"
            )

    def supervisor_state(self) -> SupervisorState | None:
        """What the supervisor last saved (components, restarts, last exits), or None."""
        return SupervisorState.load(self.run_dir)

    def component_states(self) -> dict[str, ComponentState]:
        """Each component's state, restarts and last exit; stopped when no supervisor runs."""
        state = self.supervisor_state()
        saved = state.components if state is not None else {}
        if self.processes.running(SUPERVISOR):
            return saved
        return {
            name: replace(saved.get(name, ComponentState()), state="stopped", pid=None)
            for name in COMPONENTS
        }

    def stop_component(self, name: str, sig: int = signal.SIGTERM) -> bool:
        """Stop `name` with `sig` and keep it stopped until `start_component`; True if it ran.
        StackError if the supervisor has not stopped it within 30 s."""
        was_running = self.processes.running(name)
        if not self.processes.running(SUPERVISOR):
            return self.processes.stop(name, sig)
        hold_path(self.run_dir, name).write_text(str(int(sig)))
        if not wait_until(lambda: self.component_states()[name].state == "stopped", 30.0):
            raise StackError(f"the supervisor did not stop {name}")
        return was_running

    def start_component(self, name: str) -> None:
        """Start `name` again after `stop_component`; return once it is ready. StackError when
        no supervisor runs, or (with its log tail) when not ready within `ready_timeout_s`."""
        if not self.processes.running(SUPERVISOR):
            raise StackError("the local stack is not running: `make up`")
        hold_path(self.run_dir, name).unlink(missing_ok=True)
        if not wait_until(
            lambda: self.component_states()[name].state == "running", self.ready_timeout_s
        ):
            tail = self.processes.log_tail(name)
            raise StackError(f"{name} did not become ready; last log lines:\n{tail}")

    def reload_model(self, name: str) -> None:
        """Redeploy: re-derive `name` from the canonical repository and have Triton load it again
        (its HTTP repository API, 60 s timeout); StackError if Triton refuses or is unreachable."""
        derive_model(self.model_repository / name, self.run_dir / "triton-repository" / name)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports.triton_http}/v2/repository/models/{name}/load",
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=60).close()
        except urllib.error.URLError as error:
            raise StackError(f"triton could not load {name}: {error}") from None

    def stop(self) -> list[str]:
        """Stop the supervisor (it stops its components), then any component it left behind;
        return the names of the components that were running, in stop order."""
        running = [name for name in reversed(COMPONENTS) if self.processes.running(name)]
        self.processes.stop(SUPERVISOR, timeout_s=60.0)
        for name in self.processes.names():  # the supervisor was killed: its children live on
            self.processes.stop(name)
        return running

    def component(self, name: str) -> Component:
        """`name`'s command, environment and readiness probe; StackError if it cannot run here."""
        return getattr(self, f"_{name.replace('-', '_')}")()

    def _redis(self) -> Component:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server not found on PATH: install it (apt-get install redis-server)"
            )
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            *("--port", str(self.ports.redis), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(data)),
            *("--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"),
        ]
        return Component(
            "redis",
            command,
            None,
            Probe(tcp_port=self.ports.redis, send="PING\r\n", expect="+PONG"),
        )

    def _triton(self) -> Component:
        triton = TritonInstallation.locate()
        repository = self.run_dir / "triton-repository"
        models = derive_local_repository(self.model_repository, repository)
        p = self.ports
        command = triton.command(
            repository, self.run_dir, p.triton_http, p.triton_grpc, p.triton_metrics
        )
        base = f"http://127.0.0.1:{p.triton_http}/v2"
        probe = Probe(urls=tuple(f"{base}/models/{m}/ready" for m in models))
        return Component("triton", command, triton.environment(), probe)

    def gateway_environment(self) -> dict[str, str]:
        """One environment for both front ends: they read the same GATEWAY_* settings."""
        return {
            **_inherited_env(),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.ports.gateway_http),
            "GATEWAY_GRPC_PORT": str(self.ports.gateway_grpc),
            "GATEWAY_GRPC_METRICS_PORT": str(self.ports.gateway_grpc_metrics),
            "GATEWAY_TRITON_URL": f"127.0.0.1:{self.ports.triton_grpc}",
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{self.ports.redis}/0",
            **self.gateway_env,
        }

    def _gateway(self) -> Component:
        probe = Probe(urls=(f"{self.urls['gateway']}/readyz",))
        # Its threads (event loop, gRPC's) on one CPU, as gateway-grpc runs one Go thread: here it
        # shares two cores with Triton, and a request then crosses no CPUs inside it. MiniLM text
        # at concurrency 32: 306-338 req/s against 291-301 unpinned, gateway CPU per request
        # 1.09-1.36 ms against 1.40-1.50 (docs/results/openvino, run 13).
        env = {"GATEWAY_CPUS": str(min(os.sched_getaffinity(0))), **self.gateway_environment()}
        return Component("gateway", [sys.executable, "-m", "gateway"], env, probe)

    def _gateway_grpc(self) -> Component:
        if not os.access(GATEWAY_GRPC_BINARY, os.X_OK):
            raise StackError(f"{GATEWAY_GRPC_BINARY} is not built: run `make gateway-grpc`")
        probe = Probe(urls=(f"http://127.0.0.1:{self.ports.gateway_grpc_metrics}/readyz",))
        # One Go thread: here it shares two cores with Triton and the HTTP gateway, and a miss then
        # crosses no CPUs inside it (p50 overhead over Triton 0.32-0.39 ms, 0.47-0.55 with two).
        env = {"GOMAXPROCS": "1", **self.gateway_environment()}
        return Component("gateway-grpc", [str(GATEWAY_GRPC_BINARY)], env, probe)


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

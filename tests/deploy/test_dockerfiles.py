"""Every Dockerfile passes hadolint with no finding at all, plus the properties issue 5 asks for."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import DOCKER_DIR, ROOT, explain, find_tool, run

DOCKERFILES = sorted(DOCKER_DIR.glob("*Dockerfile"))
TRITON_RELEASE = "24.10"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # --failure-threshold style: even the lowest-severity finding fails the check
    return run([find_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(path)])


def test_dockerfiles_exist():
    names = {p.name for p in DOCKERFILES}
    assert {"gateway.Dockerfile", "triton.Dockerfile", "converter.Dockerfile"} <= names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile):
    proc = hadolint(dockerfile)
    assert proc.returncode == 0 and not proc.stdout.strip(), explain(proc)


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """Guards against a silently passing linter: a Dockerfile with known faults must fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\nRUN cd /tmp\n"
    )
    proc = hadolint(bad)
    assert proc.returncode != 0, explain(proc)
    for rule in ("DL3007", "DL3008", "DL3015"):
        assert rule in proc.stdout, explain(proc)


def final_stage(text: str) -> str:
    return re.split(r"(?im)^FROM\s", text)[-1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_non_root_and_no_secrets(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"(?im)^USER\s+(\S+)", final_stage(text))
    assert users, "the final stage must switch to an unprivileged USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a numeric non-zero uid"
    # secrets come from the environment at run time, never from the image
    for line in re.findall(r"(?im)^(?:ENV|ARG)\s+.*$", text):
        assert not re.search(r"(?i)(password|secret|api_?keys?|token)\b", line), line
    assert not re.search(r"(?im)^(COPY|ADD)\s+.*\.env\b", text)


def test_gateway_image():
    text = (DOCKER_DIR / "gateway.Dockerfile").read_text()
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim", text), "pinned slim base"
    assert "HEALTHCHECK" in final_stage(text) and "/healthz" in text
    assert 'ENTRYPOINT ["python", "-m", "gateway"]' in text
    assert "[conversion]" not in text, "the gateway image must not pull the heavy conversion extra"


def test_triton_image():
    text = (DOCKER_DIR / "triton.Dockerfile").read_text()
    assert f"nvcr.io/nvidia/tritonserver:{TRITON_RELEASE}-py3" in text
    assert "HEALTHCHECK" in text and "/v2/health/ready" in text
    reqs = (DOCKER_DIR / "triton-requirements.txt").read_text()
    pinned = [ln for ln in reqs.splitlines() if ln and not ln.startswith("#")]
    assert any(ln.startswith("tokenizers==") for ln in pinned)
    assert all("==" in ln for ln in pinned), "pin every package of the Triton image"
    assert "model_repository" not in text, "the repository is mounted, not baked in"


def test_converter_image():
    text = (DOCKER_DIR / "converter.Dockerfile").read_text()
    # TensorRT plans only load in the Triton release whose TensorRT built them
    assert f"nvcr.io/nvidia/tensorrt:{TRITON_RELEASE}-py3" in text
    assert 'CMD ["tensorrt", "--repository", "/models"]' in text
    assert 'ENTRYPOINT ["python", "-m", "conversion"]' in text
    assert "tensorrt-cu12==${TENSORRT_PY_VERSION}" in text and "TENSORRT_PY_VERSION=10.5.0" in text


def test_dockerignore_keeps_secrets_and_models_out():
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (
        ".env",
        ".env.*",
        "**/secrets.env",
        "model_repository/",
        "**/.git",
        "**/.venv",
        "tests/",
    ):
        assert entry in lines, entry

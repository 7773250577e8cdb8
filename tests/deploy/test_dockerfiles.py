"""Every Dockerfile passes hadolint with no finding at all, plus the properties issue 5 asks for."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DOCKER_DIR, ROOT, explain, find_tool, gateway_grpc_config, run

DOCKERFILES = sorted(DOCKER_DIR.glob("*Dockerfile"))
TRITON_RELEASE = "24.10"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # --failure-threshold style: even the lowest-severity finding fails the check
    return run([find_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(path)])


def test_dockerfiles_exist():
    names = {p.name for p in DOCKERFILES}
    assert {
        "gateway.Dockerfile",
        "triton.Dockerfile",
        "converter.Dockerfile",
        "init.Dockerfile",
        "models.Dockerfile",
        "loadtest.Dockerfile",
    } <= names


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
    # GATEWAY_<NAME>_FILE settings (compose's secrets) are read before the gateway starts
    assert 'ENTRYPOINT ["env-from-files", "python", "-m", "gateway"]' in text
    assert "COPY docker/env-from-files.sh /usr/local/bin/env-from-files" in final_stage(text)
    assert os.access(DOCKER_DIR / "env-from-files.sh", os.X_OK), "COPY keeps the mode: executable"
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


def test_models_image_builds_the_demo_models_offline_on_cpu_torch():
    text = (DOCKER_DIR / "models.Dockerfile").read_text()
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim-bookworm$", text)
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert '"torch==${TORCH_VERSION}+cpu"' in text, "the CPU build, never PyPI's CUDA one"
    assert 'pip install --no-compile "./[conversion]"' in text
    env = env_of(re.sub(r"\\\n", " ", text))
    assert env["HF_HUB_OFFLINE"] == "1", "the weights come in the image: no hub calls"
    # a new named volume mounted on /models is created with the owner of the image's folder
    assert "chown 1000:1000 /models" in text and re.search(r"(?m)^USER 1000:1000$", text)
    assert 'ENTRYPOINT ["python", "-m", "conversion", "demo", "--repository", "/models"]' in text


def test_init_image_owns_the_secret_mount_points_it_writes():
    text = (DOCKER_DIR / "init.Dockerfile").read_text().replace("\\\n", " ")
    folders = ["/run/secrets/gateway", "/run/secrets/redis", "/run/secrets/grafana",
               "/run/secrets/loadtest"]  # fmt: skip
    chown = re.search(r"chown 10003:10003 ([^&\n]*)", text)
    assert chown and sorted(chown.group(1).split()) == sorted(folders)
    assert re.search(r"(?m)^USER 10003:10003$", text)
    assert "COPY docker/init_secrets.py" in text


def test_loadtest_image_has_a_current_locust_and_tritonclient_grpc_only():
    text = (DOCKER_DIR / "loadtest.Dockerfile").read_text()
    assert "pip install --no-compile --requirement /opt/loadtest/requirements.txt" in text
    entrypoint = '["python", "/opt/loadtest/run_locust.py", "-f", "/opt/loadtest/locustfile.py"]'
    assert f"ENTRYPOINT {entrypoint}" in text
    reqs = [
        line.split("#")[0].strip()
        for line in (ROOT / "loadtests" / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert "tritonclient[grpc]==2.51.0" in reqs and not any("http" in r for r in reqs)
    locust = next(r for r in reqs if r.startswith("locust=="))
    major, minor = map(int, locust.removeprefix("locust==").split(".")[:2])
    assert (major, minor) >= (2, 47), "the http extra held Locust at 2.18.4"


def test_dockerignore_keeps_secrets_and_models_out():
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (
        ".env",
        ".env.*",
        "**/secrets.env",
        "model_repository/",
        "**/.git",
        "**/.venv",
        "**/.venv-*",
        ".run/",
        "tests/",
    ):
        assert entry in lines, entry


# ---------------------------------------------------------------- gateway-grpc in the gateway image

GATEWAY_DOCKERFILE = DOCKER_DIR / "gateway.Dockerfile"
BUILD_SCRIPT = ROOT / "gateway-grpc" / "build.sh"


def stages(text: str) -> dict[str, str]:
    """{stage name: its instructions}, continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    out = {}
    for chunk in re.split(r"(?im)^(?=FROM\s)", text):
        m = re.match(r"(?i)FROM\s+\S+\s+AS\s+(\S+)", chunk)
        if m:
            out[m.group(1)] = chunk
    return out


def env_of(stage: str) -> dict[str, str]:
    env = {}
    for line in re.findall(r"(?im)^ENV\s+(.*)$", stage):
        for item in line.split():
            key, _, value = item.partition("=")
            env[key] = value
    return env


def build_script_packages() -> list[str]:
    m = re.search(r"(?ms)^packages=\((.*?)\)", BUILD_SCRIPT.read_text())
    assert m, "gateway-grpc/build.sh: no packages=(...) list"
    return m.group(1).split()


def test_gateway_image_builds_and_ships_gateway_grpc():
    text = GATEWAY_DOCKERFILE.read_text()
    st = stages(text)
    assert set(st) == {"build", "gateway-grpc", "runtime"}, set(st)
    go = st["gateway-grpc"]
    # Debian bookworm (the Go packages build.sh uses), with the Python of the image for protos.py
    assert re.match(r"(?i)FROM \$\{PYTHON_IMAGE\} AS gateway-grpc", go)
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:\S+-bookworm$", text)
    assert "COPY --from=build /opt/venv /opt/venv" in go, "protos.py needs tritonclient"
    assert re.search(
        r"(?m)^RUN bash gateway-grpc/build\.sh /opt/venv/bin/python /out/gateway-grpc$", go
    )
    # every package build.sh needs is installed first, pinned: build.sh then installs nothing
    install = re.search(r"apt-get install -y --no-install-recommends ([^&]*)", go)
    assert install, "the Go stage installs build.sh's packages with apt-get"
    pins = dict(p.split("=", 1) for p in install.group(1).split())
    assert sorted(pins) == sorted(build_script_packages())
    assert all(pins.values())
    assert env_of(go).get("CGO_ENABLED") == "0", "a static binary: no C toolchain in the stage"

    final = st["runtime"]
    assert "COPY --from=gateway-grpc /out/gateway-grpc /usr/local/bin/gateway-grpc" in final
    assert re.search(r"(?m)^EXPOSE 8080 8081 8082$", final)
    env = env_of(final)
    assert (env["GATEWAY_GRPC_PORT"], env["GATEWAY_GRPC_METRICS_PORT"]) == ("8081", "8082")
    assert re.search(r"(?m)^USER 10001:10001$", final)


def test_dockerignore_lets_gateway_grpc_in_and_local_builds_out():
    patterns = [
        ln.strip().rstrip("/")
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    needed = [
        "gateway-grpc",
        *(f"gateway-grpc/{p.name}" for p in (ROOT / "gateway-grpc").iterdir()),
    ]
    for path in needed:
        hits = [p for p in patterns if fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p + "/*")]
        assert not hits, f"{path} is kept out of the build context by {hits}"
    # build/ holds the local binary and Go cache: never sent, the image builds its own
    assert "build" in patterns


def is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: the kernel runs it without a dynamic loader."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF"
    endian = "<" if data[5] == 1 else ">"
    phoff = struct.unpack_from(endian + "Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    types = [struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # PT_INTERP


def test_gateway_grpc_builds_as_in_the_image(tmp_path):
    """What the image's Go stage runs, without an engine: build.sh on a copy of gateway-grpc/ (as
    COPY puts it in /src), with the stage's ENV; the binary is static and reads the image's ENV."""
    st = stages(GATEWAY_DOCKERFILE.read_text())
    src = tmp_path / "src"
    shutil.copytree(ROOT / "gateway-grpc", src / "gateway-grpc")
    output = tmp_path / "out" / "gateway-grpc"
    env = {**os.environ, **env_of(st["gateway-grpc"])}
    proc = run(
        ["bash", "gateway-grpc/build.sh", sys.executable, str(output)],
        env=env,
        cwd=src,
        timeout=600,
    )
    assert proc.returncode == 0, explain(proc)
    assert is_static_elf(output), "CGO_ENABLED=0 must give a static binary"
    image_env = {k: v for k, v in env_of(st["runtime"]).items() if k.startswith("GATEWAY_")}
    config = gateway_grpc_config(image_env, binary=output)
    assert (config["host"], config["grpc_port"], config["grpc_metrics_port"]) == (
        "0.0.0.0",
        8081,
        8082,
    )

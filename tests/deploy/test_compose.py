"""docker-compose.yml, rendered by the real Compose v2 (`docker compose config`) for every profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import explain, gateway_grpc_config

SECRETS = {
    "REDIS_PASSWORD": "test-redis-pw",
    "GATEWAY_API_KEYS": "test-key-1,test-key-2",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-pw",
}
CORE = {"redis", "redis-exporter", "gateway", "gateway-grpc", "prometheus", "grafana"}
PROFILES = {
    ("gpu",): CORE | {"converter", "triton"},
    ("cpu",): CORE | {"triton-cpu"},
    ("gpu", "loadtest"): CORE | {"converter", "triton", "locust"},
    ("cpu", "loadtest"): CORE | {"triton-cpu", "locust"},
}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose-env") / "test.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    return path


def render(compose, env_file: Path, profiles: tuple[str, ...]) -> dict:
    args = ["--env-file", str(env_file)]
    for p in profiles:
        args += ["--profile", p]
    proc = compose([*args, "config", "--format", "json"], env={})
    assert proc.returncode == 0, explain(proc)
    return json.loads(proc.stdout)


def gpu_devices(svc: dict) -> list[dict]:
    return (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get(
        "devices"
    ) or []


@pytest.mark.parametrize("profiles", list(PROFILES), ids=lambda p: "+".join(p))
def test_profile_renders(compose, env_file, profiles):
    cfg = render(compose, env_file, profiles)
    services = cfg["services"]
    assert set(services) == PROFILES[profiles]

    # ---- Triton: GPU reservation only in the gpu profile; converter runs to completion first
    if "gpu" in profiles:
        triton = services["triton"]
        assert any(
            "gpu" in d.get("capabilities", []) and d.get("driver") == "nvidia"
            for d in gpu_devices(triton)
        ), triton.get("deploy")
        assert "--model-config-name=gpu" in triton["command"]
        assert triton["depends_on"]["converter"]["condition"] == "service_completed_successfully"
        conv = services["converter"]
        assert gpu_devices(conv), "the converter builds TensorRT plans on the GPU"
        assert conv["command"] == ["tensorrt", "--repository", "/models"]
        assert any(v["target"] == "/models" and not v.get("read_only") for v in conv["volumes"])
        assert conv["build"]["dockerfile"] == "docker/converter.Dockerfile"
    else:
        triton = services["triton-cpu"]
        assert not any(gpu_devices(s) for s in services.values()), (
            "no GPU anywhere in the cpu profile"
        )
        assert not any(
            "--model-config-name=gpu" in (s.get("command") or []) for s in services.values()
        )
    assert triton["build"]["dockerfile"] == "docker/triton.Dockerfile"
    assert "triton-server" in triton["networks"]["backend"]["aliases"]
    assert any(v["target"] == "/models" and v.get("read_only") for v in triton["volumes"])
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert not triton.get("ports"), "Triton is reachable only inside the backend network"

    # ---- Redis: password, no persistence, maxmemory + allkeys-lru
    redis = services["redis"]
    cmd = " ".join(redis["command"])
    for flag in (
        "--requirepass",
        '--save ""',
        "--appendonly no",
        "--maxmemory ",
        "--maxmemory-policy allkeys-lru",
    ):
        assert flag in cmd, (flag, cmd)
    assert redis["environment"]["REDIS_PASSWORD"] == SECRETS["REDIS_PASSWORD"]
    assert not redis.get("ports") and not redis.get("volumes"), (
        "no published port, nothing persisted"
    )
    assert redis["healthcheck"]["test"]

    # ---- gateway: API keys on, waits for healthy Triton and Redis
    gw = services["gateway"]
    env = gw["environment"]
    assert env["GATEWAY_API_KEYS"] == SECRETS["GATEWAY_API_KEYS"]
    assert env["GATEWAY_REDIS_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    assert env["GATEWAY_TRITON_URL"] == "triton-server:8001"
    deps = gw["depends_on"]
    assert deps["redis"]["condition"] == "service_healthy"
    triton_name = "triton" if "gpu" in profiles else "triton-cpu"
    assert deps[triton_name]["condition"] == "service_healthy"
    # HTTP only: the gRPC port is gateway-grpc's
    assert {p["target"] for p in gw["ports"]} == {8080}
    assert gw["build"]["dockerfile"] == "docker/gateway.Dockerfile"
    assert set(gw["networks"]) == {"frontend", "backend"}

    # ---- gateway-grpc: the gateway's image, settings, secrets, start-up order and networks
    check_gateway_grpc(services, gw)

    # ---- Prometheus scrapes with our config and rules; Grafana provisioned, no anonymous access
    prom = services["prometheus"]
    assert any(
        v["source"].endswith("monitoring/prometheus") and v["target"] == "/etc/prometheus"
        for v in prom["volumes"]
    )
    graf = services["grafana"]
    genv = graf["environment"]
    assert genv["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert genv["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    targets = {v["target"] for v in graf["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= targets

    # ---- hardening: every container non-root, read-only root fs, no new privileges
    for name, svc in services.items():
        uid = str(svc.get("user", "")).split(":")[0]
        assert uid not in ("", "0", "root"), f"{name} runs as root"
        assert svc.get("read_only") is True, f"{name} has a writable root fs"
        assert "ALL" in svc.get("cap_drop", []), name
    assert cfg["networks"]["backend"].get("internal") is True

    if "loadtest" in profiles:
        loc = services["locust"]
        assert "/mnt/locust/locustfile.py" in loc["command"]
        assert any(v["source"].endswith("loadtests") for v in loc["volumes"])
        assert loc["depends_on"]["gateway"]["condition"] == "service_healthy"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_refuses_to_render_without_secrets(compose, tmp_path, missing):
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items() if k != missing))
    proc = compose(["--env-file", str(env_file), "--profile", "cpu", "config", "--quiet"], env={})
    assert proc.returncode != 0, explain(proc)
    assert missing in proc.stderr


def test_profile_is_required(compose, env_file):
    """A bare `up` would start nothing half-wired: no service is selected without gpu or cpu, and the
    load test alone is refused because its gateway is not selected."""
    proc = compose(["--env-file", str(env_file), "config", "--services"], env={})
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.split() == []
    proc = compose(
        ["--env-file", str(env_file), "--profile", "loadtest", "config", "--quiet"], env={}
    )
    assert proc.returncode != 0, explain(proc)
    assert "gateway" in proc.stderr


def check_gateway_grpc(services: dict, gw: dict) -> None:
    grpc = services["gateway-grpc"]
    assert grpc["image"] == gw["image"] and grpc["build"] == gw["build"]
    assert grpc["entrypoint"] == ["gateway-grpc"]
    assert not grpc.get("command")
    env = dict(grpc["environment"])
    gomaxprocs = env.pop("GOMAXPROCS")
    assert env == gw["environment"], "one GATEWAY_* environment for both front ends"
    # Go 1.19 does not read the cgroup CPU limit: GOMAXPROCS is the container's CPUs
    assert int(gomaxprocs) >= 1 and float(grpc["cpus"]) == int(gomaxprocs)
    assert {p["target"] for p in grpc["ports"]} == {8081}
    assert {str(p) for p in grpc["expose"]} == {"8081", "8082"}
    assert grpc["depends_on"] == gw["depends_on"]
    assert set(grpc["networks"]) == {"frontend", "backend"}
    assert grpc["user"] == gw["user"]
    # the image's HEALTHCHECK probes the HTTP gateway: gateway-grpc brings its own, on /readyz
    test = " ".join(grpc["healthcheck"]["test"])
    assert grpc["healthcheck"]["test"][0] == "CMD" and "/readyz" in test
    assert "GATEWAY_GRPC_METRICS_PORT" in test
    # the binary itself reads these settings: the ports Prometheus and the healthcheck use
    config = gateway_grpc_config(grpc["environment"])
    assert (config["host"], config["grpc_port"], config["grpc_metrics_port"]) == (
        "0.0.0.0",
        8081,
        8082,
    )
    assert config["triton_url"] == ["triton-server:8001"]
    assert config["redis_url"] == env["GATEWAY_REDIS_URL"]
    assert config["api_keys"] == SECRETS["GATEWAY_API_KEYS"].split(",")

"""docker-compose.yml (and the GPU switch, docker-compose.gpu.yml) rendered by the real Compose v2
(`docker compose config`), with no .env and no profile as a fresh clone has, and with each switch.
The run itself is tests/deploy/test_compose_run.py (`make compose-test`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from localstack.stack import GATEWAY_GRPC_BINARY

from .conftest import COMPOSE_FILE, DOCKER_DIR, ROOT, explain, gateway_grpc_config

GPU_OVERRIDE = ROOT / "docker-compose.gpu.yml"
ENV_FROM_FILES = DOCKER_DIR / "env-from-files.sh"
CORE = {
    "init",
    "models",
    "triton",
    "redis",
    "redis-exporter",
    "gateway",
    "gateway-grpc",
    "prometheus",
    "grafana",
}
ONE_SHOTS = {"init", "models", "converter"}
VARIANTS = {
    "bare": ((), (), CORE),
    "gpu": ((GPU_OVERRIDE,), (), CORE | {"converter"}),
    "loadtest": ((), ("loadtest",), CORE | {"locust"}),
    "gpu+loadtest": ((GPU_OVERRIDE,), ("loadtest",), CORE | {"converter", "locust"}),
}
GIVEN = {
    "REDIS_PASSWORD": "given-redis-pw",
    "GATEWAY_API_KEYS": "given-key-1,given-key-2",
    "GRAFANA_ADMIN_PASSWORD": "given-grafana-pw",
}
# each consumer's volume, written by `init`, and where it is mounted
SECRET_VOLUMES = {
    "gateway": ("gateway-secrets", "/run/secrets/gateway"),
    "gateway-grpc": ("gateway-secrets", "/run/secrets/gateway"),
    "redis": ("redis-secrets", "/run/secrets/redis"),
    "redis-exporter": ("redis-secrets", "/run/secrets/redis"),
    "grafana": ("grafana-secrets", "/run/secrets/grafana"),
    "locust": ("loadtest-secrets", "/run/secrets/loadtest"),
}


@pytest.fixture(scope="module")
def no_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty env file: a fresh clone has no .env (and a developer's own must not leak in)."""
    path = tmp_path_factory.mktemp("compose-env") / "empty.env"
    path.write_text("")
    return path


def render(
    compose,
    env_file: Path,
    overrides: tuple[Path, ...] = (),
    profiles: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict:
    args = ["--env-file", str(env_file)]
    for override in overrides:
        args += ["-f", str(override)]
    for profile in profiles:
        args += ["--profile", profile]
    proc = compose([*args, "config", "--format", "json"], env=env or {})
    assert proc.returncode == 0, explain(proc)
    return json.loads(proc.stdout)


def gpu_devices(svc: dict) -> list[dict]:
    return (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get(
        "devices"
    ) or []


def volume(svc: dict, target: str) -> dict:
    found = [v for v in svc.get("volumes", []) if v["target"] == target]
    assert len(found) == 1, (target, svc.get("volumes"))
    return found[0]


def test_a_bare_config_selects_the_whole_cpu_stack_without_any_configuration(compose, no_env_file):
    """`docker compose up` on a fresh clone: no profile, no .env, no variable; no GPU anywhere."""
    cfg = render(compose, no_env_file)
    services = cfg["services"]
    assert set(services) == CORE
    assert not any(gpu_devices(s) for s in services.values())
    assert not any("--model-config-name=gpu" in (s.get("command") or []) for s in services.values())
    assert "--allow-gpu-metrics=false" in services["triton"]["command"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_renders_hardened_and_wired(compose, no_env_file, variant):
    overrides, profiles, expected = VARIANTS[variant]
    cfg = render(compose, no_env_file, overrides, profiles)
    services = cfg["services"]
    assert set(services) == expected
    for name, svc in services.items():
        uid = str(svc.get("user", "")).split(":")[0]
        assert uid not in ("", "0", "root"), f"{name} runs as root"
        assert svc.get("read_only") is True, f"{name} has a writable root fs"
        assert "ALL" in svc.get("cap_drop", []), name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        if name in ONE_SHOTS:
            assert svc["restart"] == "no" and svc["network_mode"] == "none", name
        else:
            assert svc.get("restart") == "unless-stopped" or name == "locust", name
    assert cfg["networks"]["backend"].get("internal") is True
    check_triton(services, gpu=bool(overrides))
    check_redis(services["redis"])
    check_gateway(services)
    check_gateway_grpc(services, services["gateway"])
    check_observability(services)
    if "loadtest" in profiles:
        check_locust(services["locust"])


def test_the_gpu_switch_adds_the_converter_between_models_and_a_gpu_triton(compose, no_env_file):
    services = render(compose, no_env_file, (GPU_OVERRIDE,))["services"]
    triton, converter = services["triton"], services["converter"]
    assert any(
        "gpu" in d.get("capabilities", []) and d.get("driver") == "nvidia"
        for d in gpu_devices(triton)
    ), triton.get("deploy")
    assert "--model-config-name=gpu" in triton["command"]
    assert "--allow-gpu-metrics=true" in triton["command"]
    assert triton["depends_on"]["converter"]["condition"] == "service_completed_successfully"
    assert converter["depends_on"]["models"]["condition"] == "service_completed_successfully"
    assert gpu_devices(converter), "the converter builds TensorRT plans on the GPU"
    assert converter["command"] == ["tensorrt", "--repository", "/models"]
    assert converter["build"]["dockerfile"] == "docker/converter.Dockerfile"
    repo = volume(converter, "/models")
    assert not repo.get("read_only") and repo["source"] == volume(triton, "/models")["source"]
    others = {n: s for n, s in services.items() if n not in ("triton", "converter")}
    assert not any(gpu_devices(s) for s in others.values())


def check_triton(services: dict, gpu: bool) -> None:
    triton = services["triton"]
    assert triton["build"]["dockerfile"] == "docker/triton.Dockerfile"
    assert "triton-server" in triton["networks"]["backend"]["aliases"]
    assert set(triton["networks"]) == {"backend"}
    assert not triton.get("ports"), "Triton is reachable only inside the backend network"
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    # the demo models come from `models` on a fresh clone, into the repository Triton reads
    assert triton["depends_on"]["models"]["condition"] == "service_completed_successfully"
    repo = volume(triton, "/models")
    assert repo["read_only"] and repo["type"] == "volume" and repo["source"] == "model-repository"
    models = services["models"]
    assert volume(models, "/models")["source"] == "model-repository"
    assert not volume(models, "/models").get("read_only")
    assert models["build"]["dockerfile"] == "docker/models.Dockerfile"
    assert ("--model-config-name=gpu" in triton["command"]) == gpu


def check_redis(redis: dict) -> None:
    """No password on the command line: it is in the config file `init` writes."""
    cmd = redis["command"]
    assert cmd[:2] == ["redis-server", "/run/secrets/redis/redis.conf"]
    pairs = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert pairs["--save"] == "" and pairs["--appendonly"] == "no"
    assert pairs["--maxmemory-policy"] == "allkeys-lru" and pairs["--maxmemory"] == "256mb"
    assert not any("requirepass" in arg for arg in cmd)
    assert not redis.get("ports"), "no published port"
    assert [v["target"] for v in redis["volumes"]] == ["/run/secrets/redis"], "nothing persisted"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert set(redis["networks"]) == {"backend"}


def check_gateway(services: dict) -> None:
    gw = services["gateway"]
    env = gw["environment"]
    assert env["GATEWAY_API_KEYS_FILE"] == "/run/secrets/gateway/api_keys"
    assert env["GATEWAY_REDIS_URL_FILE"] == "/run/secrets/gateway/redis_url"
    assert "GATEWAY_API_KEYS" not in env and "GATEWAY_REDIS_URL" not in env
    assert env["GATEWAY_TRITON_URL"] == "triton-server:8001"
    deps = gw["depends_on"]
    assert deps["init"]["condition"] == "service_completed_successfully"
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["triton"]["condition"] == "service_healthy"
    assert {p["target"] for p in gw["ports"]} == {8080}, "HTTP only: 8081 is gateway-grpc's"
    assert gw["build"]["dockerfile"] == "docker/gateway.Dockerfile"
    assert set(gw["networks"]) == {"frontend", "backend"}


def check_gateway_grpc(services: dict, gw: dict) -> None:
    grpc = services["gateway-grpc"]
    assert grpc["image"] == gw["image"] and grpc["build"] == gw["build"]
    assert grpc["entrypoint"] == ["env-from-files", "gateway-grpc"]
    assert not grpc.get("command")
    env = dict(grpc["environment"])
    gomaxprocs = env.pop("GOMAXPROCS")
    assert env == gw["environment"], "one GATEWAY_* environment for both front ends"
    # Go 1.19 does not read the cgroup CPU limit: GOMAXPROCS is 2 with no CPU limit by default (a
    # limit above the host's CPUs is refused), the container's CPUs when GATEWAY_GRPC_CPUS is given
    assert int(gomaxprocs) == 2 and float(grpc.get("cpus", 0)) == 0
    assert {p["target"] for p in grpc["ports"]} == {8081}
    assert {str(p) for p in grpc["expose"]} == {"8081", "8082"}
    assert grpc["depends_on"] == gw["depends_on"]
    assert set(grpc["networks"]) == {"frontend", "backend"}
    assert grpc["user"] == gw["user"]
    # a shell check: podman's Docker API splits exec-form arguments again at spaces
    test = grpc["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "/readyz" in test[1]
    assert "${GATEWAY_GRPC_METRICS_PORT}" in test[1]


def check_observability(services: dict) -> None:
    prom = services["prometheus"]
    assert any(
        v["source"].endswith("monitoring/prometheus") and v["target"] == "/etc/prometheus"
        for v in prom["volumes"]
    )
    assert "/-/ready" in " ".join(prom["healthcheck"]["test"])
    graf = services["grafana"]
    genv = graf["environment"]
    assert genv["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert genv["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana/admin_password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in genv
    targets = {v["target"] for v in graf["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= targets
    exporter = services["redis-exporter"]
    assert exporter["environment"]["REDIS_PASSWORD_FILE"] == "/run/secrets/redis/exporter.json"
    assert exporter["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("prometheus", "grafana", "redis-exporter", "redis", "gateway-grpc", "triton"):
        assert services[name]["healthcheck"]["test"], name


def check_locust(loc: dict) -> None:
    assert loc["build"]["dockerfile"] == "docker/loadtest.Dockerfile"
    assert loc["command"] == ["--host", "http://gateway:8080"]
    assert loc["environment"]["LOCUST_GRPC_HOST"] == "gateway-grpc:8081"
    assert loc["environment"]["LOCUST_API_KEY_FILE"] == "/run/secrets/loadtest/api_key"
    assert loc["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert loc["depends_on"]["gateway-grpc"]["condition"] == "service_healthy"


def test_every_secret_is_read_from_the_consumers_own_volume_written_by_init(compose, no_env_file):
    services = render(compose, no_env_file, (GPU_OVERRIDE,), ("loadtest",))["services"]
    init = services["init"]
    written = {(v["source"], v["target"]) for v in init["volumes"] if not v.get("read_only")}
    assert written == set(SECRET_VOLUMES.values())
    mounted_by = {}
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            if v["source"].endswith("-secrets"):
                mounted_by.setdefault(v["source"], set()).add(name)
                assert name == "init" or (v["read_only"], name) == (True, name)
    for name, (source, target) in SECRET_VOLUMES.items():
        assert volume(services[name], target)["source"] == source
        readers = {n for n, (s, _) in SECRET_VOLUMES.items() if s == source}
        assert mounted_by[source] == {"init"} | readers
    # a secret given later recreates `init`; restart: true then restarts its readers (the exporter
    # follows Redis, on which it depends)
    for name in set(SECRET_VOLUMES) - {"redis-exporter"}:
        assert services[name]["depends_on"]["init"] == {
            "condition": "service_completed_successfully",
            "restart": True,
            "required": True,
        }, name


@pytest.mark.parametrize("given_in", ["environment", ".env"])
def test_given_secrets_reach_init_only(compose, no_env_file, tmp_path, given_in):
    """Given in the environment or in .env, a secret goes to `init`, which writes it for its
    readers: nowhere else in the rendered stack; nothing is asked for when none is given."""
    bare = render(compose, no_env_file)["services"]["init"]["environment"]
    assert all(bare[name] == "" for name in GIVEN)
    if given_in == ".env":
        env_file = tmp_path / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in GIVEN.items()))
        cfg = render(compose, env_file, profiles=("loadtest",))
    else:
        cfg = render(compose, no_env_file, profiles=("loadtest",), env=GIVEN)
    init = cfg["services"].pop("init")
    assert {k: init["environment"][k] for k in GIVEN} == GIVEN
    rest = json.dumps(cfg)
    for value in GIVEN.values():
        for part in value.split(","):
            assert part not in rest, part


def test_published_ports_bind_loopback_unless_told_otherwise(compose, no_env_file):
    services = render(compose, no_env_file, profiles=("loadtest",))["services"]
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert set(published) == {"gateway", "gateway-grpc", "prometheus", "grafana", "locust"}
    assert all(p["host_ip"] == "127.0.0.1" for ports in published.values() for p in ports)
    told = render(compose, no_env_file, env={"GATEWAY_BIND": "0.0.0.0"})["services"]
    assert {p["host_ip"] for n in ("gateway", "gateway-grpc") for p in told[n]["ports"]} == {
        "0.0.0.0"
    }
    assert {p["host_ip"] for p in told["prometheus"]["ports"]} == {"127.0.0.1"}


def test_gateway_grpc_reads_the_compose_settings_through_the_image_entrypoint(
    compose, no_env_file, tmp_path
):
    """gateway-grpc's own -print-config, started as compose starts it (env-from-files first), on
    the files `init` writes: the keys, the Redis URL with its password and the ports."""
    services = render(compose, no_env_file)["services"]
    env = dict(services["gateway-grpc"]["environment"])
    files = {"api_keys": "k1,k2", "redis_url": "redis://:p%40ss@redis:6379/0"}
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    env["GATEWAY_API_KEYS_FILE"] = str(tmp_path / "api_keys")
    env["GATEWAY_REDIS_URL_FILE"] = str(tmp_path / "redis_url")
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    script = wrapper / "gateway-grpc"
    script.write_text(f'#!/bin/sh\nexec sh {ENV_FROM_FILES} {GATEWAY_GRPC_BINARY} "$@"\n')
    script.chmod(0o755)
    config = gateway_grpc_config(env, binary=script)
    assert (config["host"], config["grpc_port"], config["grpc_metrics_port"]) == (
        "0.0.0.0",
        8081,
        8082,
    )
    assert config["triton_url"] == ["triton-server:8001"]
    assert config["redis_url"] == files["redis_url"]
    assert config["api_keys"] == ["k1", "k2"]


def test_env_example_names_every_variable_the_compose_files_read():
    used = set()
    for path in (COMPOSE_FILE, GPU_OVERRIDE):
        # ${NAME} is compose's; $${NAME} is the container shell's
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", path.read_text()))
    documented = (DOCKER_DIR / "env.example").read_text()
    assert used and not {name for name in used if name not in documented}


def test_gateway_grpc_has_no_cpu_limit_unless_given_and_then_as_many_go_threads(
    compose, no_env_file
):
    default = render(compose, no_env_file)["services"]["gateway-grpc"]
    assert float(default.get("cpus", 0)) == 0  # any host, even one CPU
    given = render(compose, no_env_file, env={"GATEWAY_GRPC_CPUS": "3"})["services"]["gateway-grpc"]
    assert float(given["cpus"]) == 3 and given["environment"]["GOMAXPROCS"] == "3"

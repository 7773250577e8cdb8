"""k8s/: `kubectl kustomize` of each overlay, validated by `kubernetes-validate --strict`, plus the
properties issue 5 asks for, read from the rendered manifests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import K8S_DIR, explain, find_tool, gateway_grpc_config, run

OVERLAYS = ["cpu", "gpu"]
SECRET_VALUES = {"GATEWAY_API_KEYS": "k8s-test-key", "REDIS_PASSWORD": "k8s-test-redis"}


@pytest.fixture(scope="module")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of k8s/ with the secrets.env the operator would create (it is never committed)."""
    dst = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S_DIR, dst)
    (dst / "base" / "secrets.env").write_text(
        "".join(f"{k}={v}\n" for k, v in SECRET_VALUES.items())
    )
    return dst


def kustomize(path: Path) -> subprocess.CompletedProcess[str]:
    return run([find_tool("kubectl"), "kustomize", str(path)])


@pytest.fixture(scope="module")
def rendered(k8s_copy, tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    out = {}
    for overlay in OVERLAYS:
        proc = kustomize(k8s_copy / "overlays" / overlay)
        assert proc.returncode == 0, explain(proc)
        path = tmp_path_factory.mktemp(f"render-{overlay}") / f"{overlay}.yaml"
        path.write_text(proc.stdout)
        out[overlay] = (path, [d for d in yaml.safe_load_all(proc.stdout) if d])
    return out


def get(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_validate_strict(rendered, overlay):
    path, docs = rendered[overlay]
    proc = run([find_tool("kubernetes-validate"), "--strict", "--quiet", str(path)])
    assert proc.returncode == 0, explain(proc)
    # every built-in kind is validated; only the operator's CRD (ServiceMonitor) has no schema
    assert "ERROR" not in proc.stdout + proc.stderr, explain(proc)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "ServiceMonitor",
    } <= kinds


def test_kubernetes_validate_catches_errors(tmp_path):
    """Guards against a validator that passes anything: an unknown field must fail in --strict."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n"
        "  selectr: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec: {containers: [{name: c, image: i}]}\n"
    )
    proc = run([find_tool("kubernetes-validate"), "--strict", "--quiet", str(bad)])
    assert proc.returncode != 0, explain(proc)


def test_secrets_are_not_committed(tmp_path):
    """Without the operator's secrets.env, kustomize refuses to build: no default credentials."""
    dst = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, dst, ignore=shutil.ignore_patterns("secrets.env"))
    proc = kustomize(dst / "overlays" / "cpu")
    assert proc.returncode != 0 and "secrets.env" in proc.stderr, explain(proc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton(rendered, overlay):
    _, docs = rendered[overlay]
    dep = get(docs, "Deployment", "triton")
    spec = dep["spec"]["template"]["spec"]
    triton = next(c for c in spec["containers"] if c["name"] == "triton")
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    sp = triton["startupProbe"]
    assert sp["httpGet"]["path"] == "/v2/health/ready"
    assert sp["periodSeconds"] * sp["failureThreshold"] >= 300, "model loading gets >= 5 minutes"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert "--model-repository=/models" in triton["args"]
    mount = next(m for m in triton["volumeMounts"] if m["mountPath"] == "/models")
    volumes = {v["name"]: v for v in spec["volumes"]}
    pvc_volumes = [
        v
        for v in spec["volumes"]
        if v.get("persistentVolumeClaim", {}).get("claimName") == "model-repository"
    ]
    assert pvc_volumes, "the model repository comes from the shared volume"
    get(docs, "PersistentVolumeClaim", "model-repository")
    gpu_limit = triton["resources"]["limits"].get("nvidia.com/gpu")
    if overlay == "gpu":
        assert gpu_limit == 1
        assert "--model-config-name=gpu" in triton["args"]
        conv = next(c for c in spec["initContainers"] if c["name"] == "converter")
        assert conv["image"].startswith("model-serving/converter:")
        assert "python -m conversion tensorrt --repository /models" in " ".join(conv["args"])
        assert conv["resources"]["limits"]["nvidia.com/gpu"] == 1
        # Triton serves the pod-local copy with the plans built for this node's GPU
        assert "emptyDir" in volumes[mount["name"]]
        assert any(m["name"] == pvc_volumes[0]["name"] for m in conv["volumeMounts"])
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    else:
        assert gpu_limit is None
        assert mount["name"] == pvc_volumes[0]["name"] and mount["readOnly"] is True
        assert "nvidia.com/gpu" not in yaml.safe_dump(docs)
    svc = get(docs, "Service", "triton")
    assert {p["port"] for p in svc["spec"]["ports"]} == {8000, 8001, 8002}
    get(docs, "PodDisruptionBudget", "triton")


def test_triton_autoscaling_matches_adapter_rules(rendered):
    """The Triton HPA scales on custom Pods metrics that prometheus-adapter's rules actually define."""
    adapter = yaml.safe_load((K8S_DIR / "prometheus-adapter" / "values.yaml").read_text())
    served = {r["name"]["as"]: r for r in adapter["rules"]["custom"]}
    for overlay in OVERLAYS:
        hpa = get(rendered[overlay][1], "HorizontalPodAutoscaler", "triton")
        assert hpa["spec"]["scaleTargetRef"]["name"] == "triton"
        names = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
        assert names == {"triton_queue_time_per_request_us", "triton_pending_requests"}
        assert names <= set(served)
    assert (
        "nv_inference_queue_duration_us"
        in served["triton_queue_time_per_request_us"]["metricsQuery"]
    )
    assert "nv_inference_pending_request_count" in served["triton_pending_requests"]["seriesQuery"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_and_redis(rendered, overlay):
    _, docs = rendered[overlay]
    dep = get(docs, "Deployment", "gateway")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["name"] == "gateway"
    # HTTP only: the gRPC port belongs to the gateway-grpc container
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", 8080)]
    env = {e["name"]: e for e in c["env"]}
    assert env["GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == "GATEWAY_API_KEYS"
    assert env["GATEWAY_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    # $(VAR) expansion only sees variables defined earlier in the list
    names = [e["name"] for e in c["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("GATEWAY_REDIS_URL")
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    cm_name = c["envFrom"][0]["configMapRef"]["name"]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name)
    # the headless Service: the gateway spreads its gRPC connections over every Triton pod
    assert cm["data"]["GATEWAY_TRITON_URL"] == "triton-headless:8001"
    headless = get(docs, "Service", "triton-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == {"app.kubernetes.io/name": "triton"}
    assert [p["port"] for p in headless["ports"]] == [8001]
    hpa = get(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["minReplicas"] >= 2
    assert get(docs, "PodDisruptionBudget", "gateway")["spec"]["minAvailable"] == 1

    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(secret["data"]) == set(SECRET_VALUES)
    redis = get(docs, "Deployment", "redis")["spec"]["template"]["spec"]
    rc = next(x for x in redis["containers"] if x["name"] == "redis")
    assert "--requirepass" in rc["command"]
    conf_cm = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("redis-config")
    )
    conf = conf_cm["data"]["redis.conf"]
    for line in ('save ""', "appendonly no", "maxmemory-policy allkeys-lru"):
        assert line in conf
    assert any(x["name"] == "redis-exporter" for x in redis["containers"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_grpc_container(rendered, overlay):
    """The native gRPC front end: a second container of the gateway pod, same image and settings."""
    _, docs = rendered[overlay]
    spec = get(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in spec["containers"]}
    assert set(by_name) == {"gateway", "gateway-grpc"}
    gw, grpc = by_name["gateway"], by_name["gateway-grpc"]
    assert grpc["image"] == gw["image"] and grpc["image"].startswith("model-serving/gateway:")
    assert grpc["command"] == ["gateway-grpc"]
    assert {p["name"]: p["containerPort"] for p in grpc["ports"]} == {
        "grpc": 8081,
        "grpc-metrics": 8082,
    }
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert grpc[probe]["httpGet"] == {"path": path, "port": "grpc-metrics"}, probe
    # the same ConfigMap and Secret as the HTTP gateway, and GOMAXPROCS from its own CPU limit
    assert grpc["envFrom"] == gw["envFrom"]
    env = {e["name"]: e for e in grpc["env"]}
    assert [e for e in grpc["env"] if e["name"] != "GOMAXPROCS"] == gw["env"]
    field = env["GOMAXPROCS"]["valueFrom"]["resourceFieldRef"]
    assert field == {"containerName": "gateway-grpc", "resource": "limits.cpu", "divisor": "1"}
    limits = grpc["resources"]["limits"]
    assert str(limits["cpu"]).isdigit(), "a whole CPU limit: GOMAXPROCS rounds a fraction up"
    assert grpc["resources"]["requests"]["cpu"] and grpc["resources"]["requests"]["memory"]
    assert grpc["securityContext"] == gw["securityContext"]
    # the gateway HPA's CPU utilization is the pod's usage over the sum of its containers' requests:
    # it needs a CPU request on every container
    hpa = get(docs, "HorizontalPodAutoscaler", "gateway")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "gateway"
    assert [m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"] == ["cpu"]
    assert all(c["resources"]["requests"].get("cpu") for c in spec["containers"])
    # the Service's gRPC port goes to gateway-grpc; its metrics port is scraped (ServiceMonitor)
    ports = {p["name"]: p for p in get(docs, "Service", "gateway")["spec"]["ports"]}
    assert (ports["http"]["port"], ports["http"]["targetPort"]) == (8080, "http")
    assert (ports["grpc"]["port"], ports["grpc"]["targetPort"]) == (8081, "grpc")
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert (ports["grpc-metrics"]["port"], ports["grpc-metrics"]["targetPort"]) == (
        8082,
        "grpc-metrics",
    )
    # the binary reads the ConfigMap (and the Secret) as deployed: its ports match the manifests
    cm_name = grpc["envFrom"][0]["configMapRef"]["name"]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name)
    assert cm["data"]["GATEWAY_GRPC_METRICS_PORT"] == "8082"
    config = gateway_grpc_config(
        {
            **cm["data"],
            "GATEWAY_API_KEYS": SECRET_VALUES["GATEWAY_API_KEYS"],
            "GATEWAY_REDIS_URL": f"redis://:{SECRET_VALUES['REDIS_PASSWORD']}@redis:6379/0",
            "GOMAXPROCS": str(limits["cpu"]),
        }
    )
    assert (config["host"], config["grpc_port"], config["grpc_metrics_port"]) == (
        "0.0.0.0",
        8081,
        8082,
    )
    assert config["triton_url"] == ["triton-headless:8001"]
    assert config["api_keys"] == [SECRET_VALUES["GATEWAY_API_KEYS"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_hardened(rendered, overlay):
    _, docs = rendered[overlay]
    ns = get(docs, "Namespace", "model-serving")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        spec = dep["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, dep["metadata"]["name"]
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec.get("automountServiceAccountToken") is False
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert sc.get("runAsUser", spec["securityContext"].get("runAsUser", 0)) != 0
            assert "limits" in c["resources"] and "requests" in c["resources"], c["name"]


def _peers(policy: dict) -> list[tuple[str, set[int]]]:
    out = []
    for rule in policy["spec"].get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        for peer in rule.get("from", [{"anyone": True}]):
            if "podSelector" in peer:
                who = "pod:" + peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            elif "namespaceSelector" in peer:
                who = (
                    "ns:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                )
            else:
                who = "anyone"
            out.append((who, ports))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(rendered, overlay):
    """Default deny; only the gateway reaches Triton and Redis (monitoring: metrics ports only)."""
    _, docs = rendered[overlay]
    deny = get(docs, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"]["podSelector"] == {} and deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"]
    triton = get(docs, "NetworkPolicy", "triton-ingress")
    assert triton["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "triton"
    assert sorted(_peers(triton)) == [("ns:monitoring", {8002}), ("pod:gateway", {8000, 8001})]
    redis = get(docs, "NetworkPolicy", "redis-ingress")
    assert sorted(_peers(redis)) == [("ns:monitoring", {9121}), ("pod:gateway", {6379})]
    gw = get(docs, "NetworkPolicy", "gateway-ingress")
    # the API from anyone; gateway-grpc's metrics port only from Prometheus' namespace
    assert sorted(_peers(gw)) == [("anyone", {8080, 8081}), ("ns:monitoring", {8082})]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert len(policies) == 4, "a new policy must be reviewed here"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors(rendered, overlay):
    _, docs = rendered[overlay]
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"gateway", "triton", "redis"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name, sm in monitors.items():
        port_names = {p["name"] for p in services[name]["spec"]["ports"]}
        sel = sm["spec"]["selector"]["matchLabels"]
        assert services[name]["metadata"]["labels"].items() >= sel.items()
        for ep in sm["spec"]["endpoints"]:
            assert ep["port"] in port_names and ep["path"] == "/metrics"
    # both gateway front ends; the gRPC one under job="gateway-grpc", as in the compose Prometheus
    endpoints = {ep["port"]: ep for ep in monitors["gateway"]["spec"]["endpoints"]}
    assert set(endpoints) == {"http", "grpc-metrics"}
    assert "relabelings" not in endpoints["http"], "job=gateway: the Service name"
    assert {"action": "replace", "targetLabel": "job", "replacement": "gateway-grpc"} in (
        endpoints["grpc-metrics"]["relabelings"]
    )

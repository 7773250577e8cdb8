"""Grafana dashboards: structure and provisioning, every query parsed by promtool, and every panel's
PromQL run against a real Prometheus that scrapes the running local stack after some traffic."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from .conftest import DASHBOARD_DIR, K8S_DIR, MONITORING_DIR, ROOT, explain, find_tool, run

DASHBOARDS = {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}
# Grafana's variables, as Grafana resolves them with "All" selected
RATE_WINDOW = "5m"  # wide enough that query order and a slow machine do not matter
VARIABLES = {"$__rate_interval": RATE_WINDOW, "$model": ".*"}
GPU_TAG = "gpu-only"


def concrete(expr: str) -> str:
    for var, value in VARIABLES.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unresolved Grafana variable in {expr}"
    return expr


def all_targets() -> list[tuple[str, dict, dict]]:
    return [
        (name, p, t) for name, d in DASHBOARDS.items() for p in d["panels"] for t in p["targets"]
    ]


def target_id(item: tuple[str, dict, dict]) -> str:
    name, panel, target = item
    return f"{name}:{panel['title']}:{target['refId']}"


# ------------------------------------------------------------------ structure, no stack needed


def test_dashboards_present():
    assert set(DASHBOARDS) == {"gateway", "triton", "redis"}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_structure(name):
    d = DASHBOARDS[name]
    ds = yaml.safe_load(
        (MONITORING_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    ds_uid = ds["datasources"][0]["uid"]
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in d["templating"]["list"]}
    for p in d["panels"]:
        assert p["type"] in {"timeseries", "stat"}, p["title"]
        assert p["datasource"]["uid"] == ds_uid, p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == ds_uid
            used = set(re.findall(r"\$(\w+)", t["expr"])) - {"__rate_interval"}
            assert used <= variables, f"{p['title']}: undefined variables {used - variables}"
    for v in d["templating"]["list"]:
        assert v["datasource"]["uid"] == ds_uid


def test_uids_unique():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))


REQUIRED_PANELS = {
    "gateway": [
        r"^Requests / s",
        r"p50 / p95 / p99",
        r"Errors / s by status code",
        r"^Cache hit ratio",
        r"^Coalesced",
        r"^In-flight",
    ],
    "triton": [
        r"^Inferences / s by model",
        r"^Average batch size",
        r"Queue time vs compute time",
        r"^Pending requests",
        r"^GPU utilization",
        r"^GPU memory",
    ],
    "redis": [r"^Redis up", r"^Memory", r"^Commands / s", r"hit ratio", r"^Evicted"],
}


@pytest.mark.parametrize("name", sorted(REQUIRED_PANELS))
def test_required_panels(name):
    titles = [p["title"] for p in DASHBOARDS[name]["panels"]]
    for pattern in REQUIRED_PANELS[name]:
        assert any(re.search(pattern, t) for t in titles), f"{name}: no panel matching {pattern!r}"
    gpu = [p["title"] for p in DASHBOARDS[name]["panels"] if GPU_TAG in p.get("tags", [])]
    if name == "triton":
        assert sorted(gpu) == ["GPU memory used", "GPU utilization"]
        for p in DASHBOARDS[name]["panels"]:
            assert (GPU_TAG in p.get("tags", [])) == any(
                "nv_gpu_" in t["expr"] for t in p["targets"]
            )
    else:
        assert gpu == []


def test_average_batch_size_formula():
    panel = next(
        p for p in DASHBOARDS["triton"]["panels"] if p["title"].startswith("Average batch size")
    )
    expr = panel["targets"][0]["expr"]
    assert re.fullmatch(
        r"sum by \(model\) \(rate\(nv_inference_count\{.*\}\[.*\]\)\) / "
        r"sum by \(model\) \(rate\(nv_inference_exec_count\{.*\}\[.*\]\)\)",
        expr,
    ), expr


def test_provisioning_matches_compose():
    ds = yaml.safe_load(
        (MONITORING_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    assert ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load(
        (MONITORING_DIR / "grafana/provisioning/dashboards/dashboards.yml").read_text()
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./monitoring/grafana/dashboards:{prov['providers'][0]['options']['path']}:ro" in mounts
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_every_query_parses(tmp_path):
    """promtool parses every panel query (as recording rules): a syntax error fails offline."""
    items = all_targets()
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"panel:q{i}", "expr": concrete(t["expr"])}
                    for i, (_, _, t) in enumerate(items)
                ],
            }
        ]
    }
    f = tmp_path / "panels.yml"
    f.write_text(yaml.safe_dump(rules))
    proc = run([find_tool("promtool"), "check", "rules", str(f)])
    assert proc.returncode == 0, explain(proc)
    assert f"{len(items)} rules found" in proc.stdout, explain(proc)


# ------------------------------------------------------------------ against the running stack


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "GPU" in proc.stdout


def digits_payload(rng: random.Random, n: int = 1) -> dict:
    image = [[[[round(rng.random(), 4) for _ in range(8)] for _ in range(8)]] for _ in range(n)]
    return {"model": "digits", "inputs": {"image": image}}


def drive_traffic(stack, rounds: int = 6, pause_s: float = 1.2) -> dict[str, int]:
    """Cache misses, hits, coalesced bursts, batched concurrent requests and client errors, in rounds
    spread over several scrapes (a rate needs the counters to move between two scrapes). Bounded:
    `rounds` rounds of about 70 requests each."""
    rng = random.Random(1234)
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def send(payload: dict) -> None:
        code = str(stack.predict(payload).status_code)
        with lock:
            codes[code] = codes.get(code, 0) + 1

    repeated = digits_payload(rng)
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i in range(rounds):
            for j in range(5):  # cache misses (unique inputs), 1-4 rows each
                send(digits_payload(rng, n=1 + (i + j) % 4))
            for _ in range(5):  # cache hits
                send(repeated)
            burst = digits_payload(rng)  # identical concurrent requests: coalesced
            list(pool.map(send, [burst] * 16))
            # distinct concurrent requests: Triton's dynamic batcher merges them
            list(pool.map(send, [digits_payload(rng) for _ in range(32)]))
            for bad in (
                {"model": "no_such_model", "inputs": {"image": [[[[0.0] * 8] * 8]]}},
                {"model": "digits", "inputs": {"image": [[[0.0] * 7] * 7]}},
                {"model": "digits"},
            ):
                send(bad)  # client errors: the errors-by-code panel
            time.sleep(pause_s)
    return codes


def drive_grpc_traffic(stack, rounds: int = 6, pause_s: float = 0.5) -> dict[str, int]:
    """The same kinds of requests through the gRPC front end (gateway-grpc, KServe v2 ModelInfer),
    so the panels are shown to count it too: misses, hits, a coalesced burst, a client error."""
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    rng = np.random.default_rng(2468)
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def send(image: np.ndarray) -> None:
        tensor = grpcclient.InferInput("image", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image)
        client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
        try:
            client.infer("digits", [tensor])
            code = "OK"
        except InferenceServerException as e:
            code = str(e.status())
        finally:
            client.close()
        with lock:
            codes[code] = codes.get(code, 0) + 1

    repeated = rng.random((1, 1, 8, 8), dtype=np.float32)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(rounds):
            for _ in range(3):  # cache misses
                send(rng.random((1, 1, 8, 8), dtype=np.float32))
            for _ in range(3):  # cache hits
                send(repeated)
            burst = rng.random((1, 1, 8, 8), dtype=np.float32)
            list(pool.map(send, [burst] * 8))  # identical concurrent requests: coalesced
            send(rng.random((1, 1, 7, 7), dtype=np.float32))  # wrong shape: a client error
            time.sleep(pause_s)
    return codes


@contextlib.contextmanager
def production_redis_limits(redis_url: str):
    """The deployments run Redis with maxmemory + allkeys-lru (compose, k8s); give the stack's
    redis-server the same limits for the 'used / maxmemory' panel, and restore its settings after."""
    import redis

    client = redis.Redis.from_url(redis_url)
    old = client.config_get("maxmemory*")
    if int(old.get("maxmemory", 0)) == 0:
        client.config_set("maxmemory", "256mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield
    finally:
        client.config_set("maxmemory", old["maxmemory"])
        client.config_set("maxmemory-policy", old["maxmemory-policy"])
        client.close()


@pytest.fixture(scope="module")
def live_prometheus(stack, tmp_path_factory):
    from .monitoring_stack import prometheus, redis_exporter

    work = tmp_path_factory.mktemp("prometheus")
    with (
        production_redis_limits(stack.redis_url),
        redis_exporter(stack.redis_url, work) as exporter,
    ):
        # the job names of monitoring/prometheus/prometheus.yml: one per gateway front end
        jobs = {
            "gateway": stack.gateway_metrics_url,
            "gateway-grpc": stack.local.urls["gateway gRPC metrics"],
            "triton": stack.triton_metrics_url,
            "redis": f"http://{exporter}/metrics",
        }
        with prometheus(jobs, work, scrape_interval_s=1) as prom:
            with ThreadPoolExecutor(max_workers=1) as background:
                grpc_traffic = background.submit(drive_grpc_traffic, stack)
                codes = drive_traffic(stack)
                grpc_codes = grpc_traffic.result()
            assert codes.get("200", 0) >= 300, f"the stack did not serve the traffic: {codes}"
            assert any(c.startswith("4") for c in codes), f"no client error answered: {codes}"
            assert grpc_codes.get("OK", 0) >= 60, f"gateway-grpc did not serve: {grpc_codes}"
            assert set(grpc_codes) - {"OK"}, f"no gRPC client error answered: {grpc_codes}"
            prom.wait_scrapes(3)
            yield prom


@pytest.mark.integration
def test_all_targets_up(live_prometheus):
    assert live_prometheus.targets() == {
        "gateway": "up",
        "gateway-grpc": "up",
        "triton": "up",
        "redis": "up",
    }


@pytest.mark.integration
def test_gateway_panels_count_both_front_ends(live_prometheus):
    """The two front ends are distinct scrape targets with the same metric names: the dashboard's
    queries (no job filter) add them up, and the front-end panels tell them apart."""
    by_job = {
        s["metric"]["job"]: float(s["value"][1])
        for s in live_prometheus.query(
            f"sum by (job) (increase(gateway_requests_total[{RATE_WINDOW}]))"
        )
    }
    assert set(by_job) == {"gateway", "gateway-grpc"} and min(by_job.values()) > 0, by_job
    routes = {
        s["metric"]["route"]
        for s in live_prometheus.query("sum by (route) (gateway_request_duration_seconds_count)")
    }
    assert "grpc:ModelInfer" in routes and "/predict" in routes, routes
    for metric in ("gateway_cache_hits_total", "gateway_cache_misses_total"):
        jobs = {s["metric"]["job"] for s in live_prometheus.query(f"{metric} > 0")}
        assert jobs == {"gateway", "gateway-grpc"}, (metric, jobs)
    panels = {p["title"]: p for p in DASHBOARDS["gateway"]["panels"]}
    total = concrete(panels["Requests / s"]["targets"][0]["expr"])
    per_job = concrete(panels["Requests / s by front end"]["targets"][0]["expr"])
    assert len(live_prometheus.finite_values(per_job)) == 2
    # one evaluation: the total is the sum of the two front ends
    (difference,) = live_prometheus.finite_values(f"({total}) - sum({per_job})")
    assert abs(difference) < 1e-9, difference
    up = live_prometheus.query(concrete(panels["Front ends up"]["targets"][0]["expr"]))
    assert {s["metric"]["job"]: s["value"][1] for s in up} == {"gateway": "1", "gateway-grpc": "1"}


@pytest.mark.integration
def test_empty_query_is_detected(live_prometheus):
    """Guards the check below: a misspelled metric returns no data."""
    assert live_prometheus.finite_values("sum(rate(gateway_requests_totl[1m]))") == []


# Panels the generated traffic must move: their value must also be above zero, not merely present.
MUST_BE_POSITIVE = {
    ("gateway", "Requests / s"),
    ("gateway", "Requests / s by model, route and status"),
    ("gateway", "Errors / s by status code"),
    ("gateway", "Cache hit ratio"),
    ("gateway", "Cache hit ratio by model"),
    ("gateway", "Cache hits and misses / s"),
    ("gateway", "Latency p50 / p95 / p99 by route"),
    ("gateway", "Triton call latency p50 / p99 (from the gateway)"),
    ("gateway", "Requests / s by front end"),
    ("gateway", "Front ends up"),
    ("triton", "Inferences / s by model"),
    ("triton", "Average batch size by model"),
    ("triton", "Request latency inside Triton"),
    ("redis", "Commands / s"),
    ("redis", "Keys"),
}


def test_positive_panels_exist():
    titles = {(name, p["title"]) for name, d in DASHBOARDS.items() for p in d["panels"]}
    assert titles >= MUST_BE_POSITIVE, MUST_BE_POSITIVE - titles


@pytest.mark.integration
@pytest.mark.parametrize("item", all_targets(), ids=target_id)
def test_panel_query_returns_data(live_prometheus, item):
    name, panel, target = item
    if GPU_TAG in panel.get("tags", []) and not has_gpu():
        pytest.skip(
            f"no GPU on this host: '{panel['title']}' queries nv_gpu_* metrics, which Triton "
            "exports only where it sees a GPU"
        )
    expr = concrete(target["expr"])
    values = live_prometheus.finite_values(expr)
    assert values, (
        f"{name} / {panel['title']} / {target['refId']}: no data for\n{expr}\n"
        f"raw result: {live_prometheus.query(expr)}"
    )
    if (name, panel["title"]) in MUST_BE_POSITIVE:
        assert max(values) > 0, (
            f"{name} / {panel['title']}: the traffic did not move it: {expr} = {values}"
        )


@pytest.mark.integration
def test_prometheus_adapter_queries_return_data(live_prometheus):
    """The HPA's custom metrics, with the adapter's template filled in for the local scrape."""
    adapter = yaml.safe_load((K8S_DIR / "prometheus-adapter" / "values.yaml").read_text())
    for rule in adapter["rules"]["custom"]:
        series = rule["seriesQuery"].split("{")[0]
        expr = (
            rule["metricsQuery"]
            .replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", 'job="triton"')
            .replace("<<.GroupBy>>", "instance")
        )
        assert live_prometheus.finite_values(expr), f"{rule['name']['as']}: no data for {expr}"

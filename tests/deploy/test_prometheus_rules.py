"""Prometheus config and alert rules through the real promtool: check config, check rules, test rules."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from .conftest import PROMETHEUS_DIR, explain, find_tool, run

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run([find_tool("promtool"), *args])


def test_check_config():
    proc = promtool("check", "config", str(CONFIG))
    assert proc.returncode == 0, explain(proc)
    assert "1 rule files found" in proc.stdout + proc.stderr, explain(proc)


def test_scrape_targets_match_compose():
    cfg = yaml.safe_load(CONFIG.read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in cfg["scrape_configs"]}
    assert targets["gateway"] == ["gateway:8080"]
    # the native gRPC front end serves its /metrics on GATEWAY_GRPC_METRICS_PORT (compose: 8082)
    assert targets["gateway-grpc"] == ["gateway-grpc:8082"]
    assert targets["triton"] == ["triton-server:8002"]
    assert targets["redis"] == ["redis-exporter:9121"]


def test_check_rules():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, explain(proc)


def test_rule_unit_tests():
    proc = promtool("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, explain(proc)
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_test_case():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(RULE_TESTS.read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == fired, (
        f"alerts without a firing case: {alerts - fired}; unknown: {fired - alerts}"
    )
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_promtool_catches_broken_rules_and_wrong_expectations(tmp_path):
    """Guards against a check that passes anything."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(foo[5m])\n"
    )
    proc = promtool("check", "rules", str(bad))
    assert proc.returncode != 0, explain(proc)

    shutil.copy(RULES, tmp_path / "alerts.yml")
    wrong = yaml.safe_load(RULE_TESTS.read_text())
    # claim GatewayDown does NOT fire where the real test expects it to
    for t in wrong["tests"]:
        for case in t.get("alert_rule_test", []):
            if case["alertname"] == "GatewayDown":
                case["exp_alerts"] = []
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(wrong))
    proc = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert proc.returncode != 0, explain(proc)
    assert "GatewayDown" in proc.stdout + proc.stderr


def test_gateway_down_covers_both_front_ends():
    """Both gateway jobs export the same gateway_* names: a rule that selects a job covers both."""
    cfg = yaml.safe_load(CONFIG.read_text())
    jobs = {j["job_name"] for j in cfg["scrape_configs"]}
    assert {"gateway", "gateway-grpc"} <= jobs
    rules = yaml.safe_load(RULES.read_text())
    expr = next(
        r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "GatewayDown"
    )
    assert 'job=~"gateway|gateway-grpc"' in expr, expr
    for g in rules["groups"]:
        for r in g["rules"]:
            if "gateway_" in r["expr"]:
                assert "job=" not in r["expr"], f"{r['alert']} would count one front end only"

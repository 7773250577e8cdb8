"""`make bench` and `make loadtest` end to end, on the tiny setting (seconds, real processes)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_make

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def make(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return run_make(*args, timeout=timeout)


def test_make_bench_tiny_writes_markdown_plots_and_json(model_repository, tmp_path):
    out = tmp_path / "bench"

    done = make("bench", f"BENCH_ARGS=--tiny --out {out}")

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert not results["errors"], results["errors"]
    assert results["baseline"] and results["techniques"] and results["sweep"]
    assert {t["technique"] for t in results["techniques"]} >= {
        "graph optimization",
        "dynamic batching",
        "cache",
        "cached answer latency",
    }
    assert all(
        r["requests"] > 0 for row in results["baseline"] for r in (row["naive"], row["optimized"])
    )
    assert results["cost"]["rows"]
    assert json.loads((out / "hardware.json").read_text())["schema"] == "bench-hardware/1"
    assert "## Seed claims against this machine" in (out / "report.md").read_text()
    assert (out / "baseline.png").exists() and (out / "sweep-digits.png").exists()
    assert (out / "cost.png").exists()


def test_make_loadtest_runs_headless_and_writes_csv_html_and_json(stack, tmp_path):
    out = tmp_path / "loadtest"

    done = make(
        "loadtest",
        "LOADTEST_TIME=4s",
        "LOADTEST_USERS=6",
        f"LOADTEST_ARGS=--host {stack.gateway_url} --grpc-host {stack.gateway_grpc_url} "
        f"--classes RepeatHttpUser,UniqueHttpUser,MixedHttpUser,UniqueGrpcUser --out {out}",
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for name in (
        "locust_stats.csv",
        "locust_failures.csv",
        "locust.html",
        "locust.json",
        "slo.json",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["requests"] > 0
    assert {"POST http repeat", "POST http unique", "POST http mixed"} <= set(summary["endpoints"])


def test_loadtest_exits_non_zero_when_the_latency_objective_is_broken(stack, tmp_path):
    out = tmp_path / "loadtest"

    done = make(
        "loadtest",
        "LOADTEST_TIME=3s",
        "LOADTEST_USERS=4",
        f"LOADTEST_ARGS=--host {stack.gateway_url} --classes UniqueHttpUser "
        f"--slo-p99-ms 0.001 --out {out}",
    )

    assert done.returncode != 0
    verdict = json.loads((out / "slo.json").read_text())
    assert not verdict["passed"] and "p99" in verdict["broken"][0]
    assert (out / "locust_stats.csv").exists() and (out / "locust.html").exists()


def test_make_bench_gateway_measures_hits_then_misses_through_each_grpc_front(
    model_repository, tmp_path
):
    out = tmp_path / "gateway"

    done = make(
        "bench-gateway",
        f"GATEWAY_BENCH_ARGS=--out {out} --workers 1 --duration-s 1 "
        "--sequential 20 --miss-rounds 1 --miss-calls 50 --http-requests 50",
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads((out / "gateway.json").read_text())
    rows = result["rows"]
    assert rows[0]["configuration"] == "1 worker" and rows[1]["cpus"]  # unpinned, then pinned
    for row in rows:
        assert row["hits_per_s_c32"] > 0 and row["hit_errors_c32"] == 0
    misses = {row["target"]: row for row in result["misses"]["rows"]}
    assert len(misses) == 5 and misses["Triton direct"]["overhead_p50_ms"] is None
    assert all(len(row["p50_ms"]) == 1 and row["p50_ms"][0] > 0 for row in misses.values())
    assert misses["Python gRPC pass-through"]["overhead_p50_ms"] > 0  # a hop costs something
    assert "| overhead p50 ms (median) |" in (out / "gateway.md").read_text()
    http = {row["target"]: row for row in result["perf_analyzer_http"]["rows"]}
    assert set(http) == {
        "Triton HTTP direct, misses, binary",
        "gateway HTTP, misses, binary",
        "gateway HTTP, hits, binary",
        "gateway HTTP, hits, JSON",
        "gateway HTTP, hits of 64 rows, binary",
        "gateway HTTP, hits of 64 rows, JSON",
    }
    assert all(row["throughput"] > 0 and row["p50_ms"] > 0 for row in http.values())

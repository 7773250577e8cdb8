"""`make soak`: gateway RSS sampling, the plot and summary, and the soak verdict (zero failed requests,
RSS steady after warm-up): the verdict on recorded samples, then the soak path end to end for seconds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks import memory
from benchmarks.memory import Sample, SoakLimits, soak_verdict
from localstack.processes import wait_until
from tests.conftest import run_make

REPO_ROOT = Path(__file__).resolve().parents[2]


def series(values: list[float], step_s: float = 2.0) -> list[Sample]:
    return [Sample(round(i * step_s, 2), v) for i, v in enumerate(values)]


# A 10-minute soak sampled every 2 s (301 samples): warm-up climb, then flat with allocator noise.
WARM_UP = [80 + 0.5 * i for i in range(40)]  # 80 -> 99.5 MB over the first 80 s
FLAT = WARM_UP + [100 + (0.6 if i % 7 == 0 else 0) - (0.4 if i % 5 == 0 else 0) for i in range(261)]
# The same run leaking 0.1 MB per sample (15 MB / min) from the 150th sample on
LEAK = FLAT[:150] + [v + 0.1 * i for i, v in enumerate(FLAT[150:])]


# ------------------------------------------------------------------ verdict on recorded samples
def test_flat_rss_with_zero_failures_passes():
    verdict = soak_verdict(series(FLAT), requests=120_000, failures=0)

    assert verdict.passed, verdict.broken
    assert abs(verdict.growth.growth_mb) < 1
    assert verdict.growth.start_mb == 80 and verdict.growth.max_mb == pytest.approx(100.6)
    assert verdict.growth.window_from_s == 300  # second half of 600 s


def test_growth_during_warm_up_is_not_judged():
    climb_then_flat = [50 + i for i in range(150)] + [199.0] * 151  # 50 -> 199 MB, then flat

    assert soak_verdict(series(climb_then_flat), requests=1, failures=0).passed


def test_growing_rss_after_warm_up_fails():
    verdict = soak_verdict(series(LEAK), requests=120_000, failures=0)

    assert not verdict.passed
    assert verdict.growth.growth_mb == pytest.approx(15, abs=0.5)
    assert verdict.growth.growth_pct > 10
    assert any("%" in reason for reason in verdict.broken)


def test_growth_limits_are_configurable_and_each_can_be_switched_off():
    leak = series(LEAK)  # +15 MB, +15 %

    assert not soak_verdict(leak, 1, 0, SoakLimits(max_growth_pct=-1, max_growth_mb=10)).passed
    assert soak_verdict(leak, 1, 0, SoakLimits(max_growth_pct=-1, max_growth_mb=20)).passed
    assert soak_verdict(leak, 1, 0, SoakLimits(max_growth_pct=20, max_growth_mb=-1)).passed
    assert not soak_verdict(leak, 1, 0, SoakLimits(max_growth_pct=20, max_growth_mb=10)).passed
    # judging from 90 % of the run on: only the last minute, +3 MB (3 %)
    assert soak_verdict(leak, 1, 0, SoakLimits(warmup_fraction=0.9)).passed


def test_one_spike_at_the_end_does_not_fail_but_a_lasting_step_does():
    spike = series([*FLAT[:-1], 160.0])
    step = series(FLAT[:-3] + [160.0] * 3)

    assert soak_verdict(spike, 1, 0).passed
    assert not soak_verdict(step, 1, 0).passed


def test_one_failed_request_fails_the_soak():
    verdict = soak_verdict(series(FLAT), requests=120_000, failures=1)

    assert not verdict.passed
    assert verdict.broken == ["1 failed request(s) (a soak allows none)"]


def test_no_requests_or_no_samples_fail_the_soak():
    assert soak_verdict(series(FLAT), requests=0, failures=0).broken == ["no request completed"]
    no_samples = soak_verdict([], requests=10, failures=0)
    assert not no_samples.passed and "no gateway RSS samples" in no_samples.broken[0]


# ------------------------------------------------------------------ sampling and the plot
def test_sampler_writes_rss_of_a_process_and_its_children(tmp_path):
    child = subprocess.Popen(["sleep", "30"])
    try:
        with memory.RssSampler(os.getpid(), tmp_path / "rss.csv", interval_s=0.1) as sampler:
            assert wait_until(lambda: len(sampler.samples) >= 4, 30)
    finally:
        child.kill()
        child.wait()

    rows = list(csv.DictReader((tmp_path / "rss.csv").open()))
    assert len(rows) >= 3 and list(rows[0]) == memory.CSV_FIELDS
    assert memory.load_samples(tmp_path / "rss.csv") == sampler.samples
    assert all(s.processes >= 2 and s.rss_mb > 10 for s in sampler.samples)
    assert [s.elapsed_s for s in sampler.samples] == sorted(s.elapsed_s for s in sampler.samples)


def test_proc_fallback_agrees_with_psutil(monkeypatch):
    with_psutil = memory.rss_bytes(os.getpid())
    monkeypatch.setattr(memory, "psutil", None)
    from_proc = memory.rss_bytes(os.getpid())

    assert from_proc[1] == with_psutil[1]
    assert abs(from_proc[0] - with_psutil[0]) < 16 * memory.MB
    assert memory.rss_bytes(2**22 + 12345) is None  # no such pid


def test_plot_is_written(tmp_path):
    memory.plot_rss(series(LEAK), tmp_path / "rss.png")

    assert (tmp_path / "rss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ the soak path, for seconds
def make(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return run_make(*args, timeout=timeout)


@pytest.mark.integration
def test_make_soak_for_seconds_writes_rss_csv_plot_summary_and_verdict(model_repository, tmp_path):
    out = tmp_path / "soak"

    done = make(
        "soak",
        "SOAK_TIME=6s",
        "LOADTEST_USERS=4",
        "SOAK_ARGS=--rss-interval 1",
        f"LOADTEST_ARGS=--out {out}",
    )

    soak = json.loads((out / "soak.json").read_text())
    assert done.returncode == (0 if soak["passed"] and soak["locust_exit_code"] == 0 else 1)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for name in (
        "gateway_rss.csv",
        "gateway_rss.png",
        "summary.md",
        "summary.json",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust.html",
        "locust.json",
    ):
        assert (out / name).stat().st_size > 0, name
    samples = memory.load_samples(out / "gateway_rss.csv")
    assert len(samples) >= 5 and all(s.rss_mb > 10 for s in samples)
    assert soak["growth"]["samples"] == len(samples) and soak["limits"]["max_growth_pct"] == 10
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] > 0 and summary["failures"] == 0 and summary["soak"]["passed"]
    text = (out / "summary.md").read_text()
    assert text.startswith("# Soak: PASSED") and "gateway RSS start / end / max" in text
    assert "| failures | 0 |" in text and "| p50 |" in text and "| p99 |" in text


@pytest.mark.integration
def test_soak_against_a_host_without_the_gateway_pid_fails_for_want_of_samples(stack, tmp_path):
    out = tmp_path / "soak"

    done = make(
        "soak",
        "SOAK_TIME=2s",
        "LOADTEST_USERS=2",
        f"LOADTEST_ARGS=--host {stack.gateway_url} --out {out}",
    )

    assert done.returncode != 0
    soak = json.loads((out / "soak.json").read_text())
    assert not soak["passed"]  # on a busy machine "no request completed" in 2 s may come first
    assert any("no gateway RSS samples" in reason for reason in soak["broken"]), soak["broken"]
    assert not (out / "gateway_rss.csv").exists()
    assert "not sampled" in (out / "summary.md").read_text()

"""The tuner's search and choice, on a fake measurement (pure logic: which trials it runs, what it
prunes, what it picks), and the manifest-driven candidate list."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.optimize import Options, build_record
from benchmarks.sweep import ConfigPoint
from benchmarks.tuning import (
    Budget,
    Limits,
    Search,
    Target,
    Trial,
    best,
    limits,
    manifest_variants,
)
from benchmarks.tuning_report import render

SLO = 100.0
TARGET = Target("m", "m_text", "m", "m_tokenizer", ("m", "m_int8"))
BASE = ConfigPoint("m", 64, 2000, 2, "extended", 1)


def fake(model):
    """measure() of a Search whose numbers come from `model(point) -> (throughput, p99)`."""

    def measure(index: int, stage: str, point: ConfigPoint, limits: Limits) -> Trial:
        throughput, p99 = model(point)
        trial = Trial(index, stage, point, throughput, p99 / 2, p99, seconds=1.0)
        if p99 > limits.p99_ms or throughput < limits.throughput:
            trial.stopped = "probe beyond the limits"
        return trial

    return measure


def int8_likes_short_delays(point: ConfigPoint) -> tuple[float, float]:
    """A closed loop of 32 clients: p99 ~ 1.5 x 32 / throughput, plus the queue delay's wait."""
    speed = 2.0 if point.variant == "m_int8" else 1.0
    delay = point.queue_delay_us or 0
    throughput = 200 * speed * point.instances + delay / 100
    return throughput, 1.5 * 32 / throughput * 1000 + delay / 20


def test_the_winner_is_the_fastest_configuration_that_meets_the_objective():
    search = Search(TARGET, fake(int8_likes_short_delays), SLO, 32, Budget(600), cores=2)

    search.run(BASE)

    winner = search.winner()
    assert winner.point.variant == "m_int8" and winner.meets(SLO)
    feasible = [t.throughput for t in search.trials if t.meets(SLO) and t.stage != "confirm"]
    assert winner.throughput >= max(feasible) * 0.999
    assert search.trials[0].point == BASE and search.default().point == BASE
    assert winner.stage == "confirm" and winner.repeats == 2  # chosen on the mean of two runs


def test_larger_delays_are_pruned_once_one_breaks_the_objective():
    search = Search(TARGET, fake(int8_likes_short_delays), SLO, 32, Budget(600), cores=2)

    search.run(BASE)

    delays = [t.point.queue_delay_us for t in search.trials if t.stage == "delay"]
    assert 4000 in delays  # p99 220 ms: stopped at its probe
    assert 8000 not in delays


def test_with_no_configuration_meeting_the_objective_the_lowest_p99_wins():
    trials = [
        Trial(1, "variant", BASE, 900.0, 100.0, 300.0),
        Trial(2, "variant", BASE.with_(variant="m_int8"), 500.0, 60.0, 150.0),
    ]

    assert best(trials, SLO).point.variant == "m_int8"


def test_a_probe_is_judged_against_the_objective_once_a_configuration_meets_it():
    slow = Trial(1, "variant", BASE, 100.0, 50.0, 150.0)
    fast = Trial(2, "delay", BASE.with_(queue_delay_us=0), 500.0, 20.0, 60.0)

    assert limits([], SLO, 2.0, 0.6) == Limits()  # the first trial is always measured in full
    assert limits([slow], SLO, 2.0, 0.6) == Limits(p99_ms=300.0)  # 2 x the lowest p99
    assert limits([slow, fast], SLO, 2.0, 0.6) == Limits(p99_ms=200.0, throughput=300.0)


def test_the_search_stops_at_its_budget_with_the_trials_it_has():
    search = Search(TARGET, fake(int8_likes_short_delays), SLO, 32, Budget(0.0), cores=2)

    search.run(BASE)

    assert len(search.trials) == 1 and search.exhausted
    assert search.winner().point == BASE


def test_candidates_come_from_the_manifest_so_new_variants_are_picked_up(tmp_path: Path):
    manifest = {
        "model": "m",
        "variants": {
            "fp32": {"served_as": "m", "passed": True, "reasons": []},
            "int8_static": {"served_as": None, "passed": True, "not_served": "slower"},
            "fp16": {"served_as": None, "passed": False, "reasons": ["cosine 0.5 < 0.99"]},
            "ov_int8": {"served_as": "m_ov_int8", "passed": True, "reasons": []},
        },
        "served": ["m", "m_ov_int8"],
    }
    (tmp_path / "m_trt_fp16").mkdir()
    (tmp_path / "m_trt_fp16" / "config.pbtxt").write_text('platform: "tensorrt_plan"\n')
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    found = manifest_variants(manifest, tmp_path)

    assert found["m"] == "" and found["m_ov_int8"] == "" and found["m_trt_fp16"] == ""
    assert found["int8_static"].startswith("not served")
    assert found["fp16"].startswith("failed the accuracy gate")


def test_the_report_names_the_served_variant_its_margin_and_the_cost(tmp_path: Path):
    search = Search(TARGET, fake(int8_likes_short_delays), SLO, 32, Budget(600), cores=2)
    search.run(BASE)
    extra = {
        "when": "now",
        "elapsed_s": 17.0,
        "load_average": {"before": "1.00", "after": "1.00"},
        "report": "report.md",
    }
    record = build_record(Options("m"), TARGET, search, {"machine": {"cpu": "test"}}, extra)

    text = render(record, tmp_path).read_text()

    assert "`m_text` now runs `m_int8`" in text
    assert "`m_int8` won on this hardware, 1.95x the throughput of the next variant" in text
    assert record["gain"]["throughput_ratio"] > 1 and "winner_usd_per_1k" in record["cost"]
    assert (tmp_path / "search.png").stat().st_size > 0

"""`make optimize` end to end on a copy of the digits models (a tiny budget, a real tritonserver),
and the served result: the winner's config, the previous one kept, the record reused, the text
ensemble pointed at the winning encoder, and the tuned repository served by tritonserver."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from benchmarks import sweep as bt
from benchmarks.optimize import Options, measurement
from benchmarks.optimize_proof import compare
from benchmarks.sweep import ConfigPoint
from benchmarks.tuned_config import PREVIOUS, write_served
from benchmarks.tuning import find_target
from benchmarks.tuning_server import Measurement
from conversion.triton_config import read_config
from localstack.tritonserver import derive_local_repository
from tests.conftest import run_make

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = "--variants digits,digits_int8 --window-ms 300"


def make(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_make(*args, timeout=timeout)


def copy_models(source: Path, target: Path, prefix: str) -> Path:
    """The `prefix*` models of `source`, configs copied (the tuner rewrites them), files copied."""
    for model in source.glob(f"{prefix}*"):
        shutil.copytree(model, target / model.name, symlinks=True)
    return target


@pytest.fixture(scope="module")
def tuned(model_repository, tmp_path_factory) -> dict:
    """One tiny `make optimize MODEL=digits` on a copy of the digits models, and what it wrote."""
    root = tmp_path_factory.mktemp("optimize")
    repository = copy_models(model_repository, root / "repository", "digits")
    out = root / "report"
    args = f"OPTIMIZE_ARGS=--repository {repository} {TINY} --out {out}"
    done = make("optimize", "MODEL=digits", "BUDGET_MIN=0.5", args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((repository / "digits" / "tuning.json").read_text())
    return {"repository": repository, "out": out, "record": record, "args": args, "done": done}


@pytest.mark.integration
def test_optimize_serves_the_winner_and_records_what_it_measured(tuned):
    record, repository = tuned["record"], tuned["repository"]
    winner = record["winner"]["point"]
    config = read_config(repository / winner["variant"] / "config.pbtxt")

    # which variants the conversion served depends on this machine's speed when it ran
    served = {p.parent.name for p in repository.glob("digits*/config.pbtxt")}
    asked = {"digits", "digits_int8"} & served
    assert len(record["trials"]) >= 2
    assert {t["point"]["variant"] for t in record["trials"]} == asked
    assert all(record["skipped"][name] == "not asked for" for name in served - asked)
    assert config.dynamic_batching.max_queue_delay_microseconds == winner["queue_delay_us"]
    assert config.instance_group[0].count == winner["instances"]
    assert config.parameters["intra_op_thread_count"].string_value == str(winner["threads"])
    assert record["key"]["machine"]["cores"] and record["key"]["models"]["digits"]
    for changed in record["changed"]:
        assert (Path(changed).parent / PREVIOUS).exists()
    assert (tuned["out"] / "report.md").read_text().startswith("# make optimize MODEL=digits")
    assert (tuned["out"] / "search.png").stat().st_size > 0


@pytest.mark.integration
def test_a_second_run_on_the_same_model_and_machine_reuses_the_record(tuned):
    started = time.perf_counter()

    done = make("optimize", "MODEL=digits", "BUDGET_MIN=0.5", tuned["args"])

    assert done.returncode == 0, done.stderr[-2000:]
    assert "reused" in done.stdout
    again = json.loads((tuned["repository"] / "digits" / "tuning.json").read_text())
    assert again["when"] == tuned["record"]["when"]
    assert time.perf_counter() - started < 60


@pytest.mark.integration
def test_the_tuned_repository_is_served_with_the_winning_configuration(tuned, tmp_path):
    winner = tuned["record"]["winner"]["point"]
    derive_local_repository(tuned["repository"], tmp_path / "repository")

    with bt.TritonServer(tmp_path / "run", tmp_path / "repository") as server:
        url = f"http://127.0.0.1:{server.http_port}/v2/models/{winner['variant']}/config"
        served = httpx.get(url, timeout=30).json()

    assert served["dynamic_batching"]["max_queue_delay_microseconds"] == winner["queue_delay_us"]
    assert served["instance_group"][0]["count"] == winner["instances"]


def test_a_model_that_was_never_converted_fails_with_one_clear_line(tmp_path):
    done = subprocess.run(
        [".venv/bin/python", "-m", "benchmarks", "optimize", "no_such_model"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no converted model 'no_such_model'")


def test_the_text_ensemble_is_pointed_at_the_winning_encoder_with_the_conversions_fingerprint(
    model_repository, tmp_path
):
    # another served encoder than FP32: which ones are served depends on this machine's latency
    other = next(
        (n for n in ("minilm_ov_int8", "minilm_fp16", "minilm_ov_bf16", "minilm_int8")
         if (model_repository / n).exists()),
        None,
    )  # fmt: skip
    if other is None:
        pytest.skip("only the FP32 MiniLM is served on this machine")
    for name in ("minilm", other, "minilm_tokenizer", "minilm_text", f"{other}_text"):
        (tmp_path / name).mkdir()
        shutil.copy(model_repository / name / "config.pbtxt", tmp_path / name)
    shutil.copy(model_repository / "minilm" / "manifest.json", tmp_path / "minilm")
    target = find_target(tmp_path, "minilm", ("minilm", other))

    write_served(tmp_path, target, ConfigPoint(other, 64, 500, 2, "extended", 1))

    entry = read_config(tmp_path / "minilm_text" / "config.pbtxt")
    built = read_config(tmp_path / f"{other}_text" / "config.pbtxt")
    assert [s.model_name for s in entry.ensemble_scheduling.step] == ["minilm_tokenizer", other]
    assert entry.parameters["fingerprint"] == built.parameters["fingerprint"]
    assert (tmp_path / "minilm_text" / PREVIOUS).exists()
    encoder = read_config(tmp_path / other / "config.pbtxt")
    assert encoder.dynamic_batching.max_queue_delay_microseconds == 500


@pytest.mark.integration
def test_the_comparison_measures_the_default_and_the_tuned_deployment_in_turn(
    tuned, model_repository, tmp_path
):
    done = compare(
        "digits", model_repository, tuned["repository"], tmp_path, rounds=1, window_ms=300
    )

    assert done["called"] == {"default": "digits", "tuned": tuned["record"]["call"]}
    assert len(done["rounds"]["default"]) == len(done["rounds"]["tuned"]) == 1
    assert done["throughput_ratio"] > 0
    assert json.loads((tmp_path / "compare-digits.json").read_text()) == done


def test_every_trial_is_measured_with_the_options_window_and_three_trials():
    how = measurement(Options("minilm", slo_p99_ms=250.0, window_ms=1500, concurrency=16))
    assert how == Measurement(concurrency=16, window_ms=1500, probe_window_ms=500, trials=3)

"""benchmarks.checkouts on the tiny setting: a checkout measured through its own stack."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer

from benchmarks.checkouts import main

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def measure_this_checkout(model: str, out: Path) -> None:
    """benchmarks.checkouts on this checkout alone, 1 s at concurrency 2."""
    main(checkout=[REPO_ROOT], model=[model], concurrency=2, seconds=1.0, sentences=50, out=out)


def test_a_checkout_is_measured_through_its_own_stack_which_is_down_afterwards(
    model_repository, tmp_path
):
    out = tmp_path / "checkouts"

    measure_this_checkout("minilm_text", out)

    [row] = json.loads((out / "results.json").read_text())
    assert row["end_to_end"]["requests"] > 0 and row["end_to_end"]["errors"] == 0
    assert row["model"] == "minilm_text" and row["commit"]
    gateway = row["end_to_end"]["target"].removesuffix("/predict (wrk)")
    with pytest.raises(httpx.ConnectError):
        httpx.get(gateway + "/healthz", timeout=5)


def test_a_model_the_checkout_does_not_serve_stops_the_run_by_name(model_repository, tmp_path):
    with pytest.raises(typer.Exit):
        measure_this_checkout("no_such_model", tmp_path)

    assert not (tmp_path / "results.json").exists()
    state = json.loads((tmp_path / "work-0" / "run" / "supervisor.json").read_text())
    assert {c["state"] for c in state["components"].values()} == {"stopped"}
    assert {c["pid"] for c in state["components"].values()} == {None}


def test_every_checkout_is_checked_before_any_stack_starts(tmp_path):
    with pytest.raises(typer.Exit):
        main(
            checkout=[REPO_ROOT, tmp_path],  # the second is no git checkout
            model=["minilm_text", "minilm_text"],
            concurrency=2,
            seconds=1.0,
            sentences=50,
            out=tmp_path / "out",
        )

    assert not (tmp_path / "out").exists()


def test_without_wrk_the_run_stops_before_any_stack_starts_and_says_how_to_install_it(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk here

    with pytest.raises(typer.Exit):
        measure_this_checkout("minilm_text", tmp_path / "out")

    assert "make tools" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

"""benchmarks.text_path refuses to start without its load generator."""

from __future__ import annotations

import pytest
import typer

from benchmarks.text_path import main


def test_without_wrk_the_run_stops_before_any_stack_starts_and_says_how_to_install_it(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk here

    with pytest.raises(typer.Exit):
        main(
            repository=[tmp_path / "repo"],
            variant=["minilm"],
            concurrency=2,
            seconds=1.0,
            sentences=10,
            out=tmp_path / "out",
        )

    assert "make tools" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

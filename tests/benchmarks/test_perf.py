"""perf_analyzer runs with its libraries found and the user's arguments unchanged."""

import subprocess
from pathlib import Path

import pytest

from benchmarks import perf


def test_its_libraries_come_first_on_the_library_path(monkeypatch, tmp_path):
    monkeypatch.setattr(perf, "library_dir", lambda: tmp_path)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/elsewhere")
    assert perf.environment()["LD_LIBRARY_PATH"] == f"{tmp_path}:/elsewhere"


def test_main_replaces_itself_with_perf_analyzer_and_the_arguments_as_given(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(perf, "binary", lambda: Path("/bin/perf_analyzer"))
    monkeypatch.setattr(perf, "library_dir", lambda: tmp_path)
    monkeypatch.setattr(perf.os, "execve", lambda *args: calls.append(args))
    perf.main(["-m", "digits", "-u", "127.0.0.1:8080", "-i", "http"])
    ((path, argv, env),) = calls
    assert argv == ["/bin/perf_analyzer", "-m", "digits", "-u", "127.0.0.1:8080", "-i", "http"]
    assert path == Path("/bin/perf_analyzer") and str(tmp_path) in env["LD_LIBRARY_PATH"]


def test_a_missing_binary_is_one_line_and_exit_2(monkeypatch, capsys):
    def missing():
        raise perf.PerfAnalyzerError(
            "perf_analyzer not found: pip install 'tritonclient[all]==2.51.0'"
        )

    monkeypatch.setattr(perf, "binary", missing)
    with pytest.raises(SystemExit) as exited:
        perf.main(["--version"])
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: perf_analyzer not found: pip install 'tritonclient[all]==2.51.0'\n"
    )


def test_the_bundled_binary_runs_from_make():
    done = subprocess.run(
        ["make", "-s", "perf-analyzer", "ARGS=--version"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Perf Analyzer Version 2.51.0" in done.stdout + done.stderr  # it prints it to stderr

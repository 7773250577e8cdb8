"""perf_analyzer runs with its libraries found and the user's arguments unchanged; a measurement
a loaded machine failed is retried wider."""

import subprocess
from pathlib import Path

import pytest

from benchmarks import perf


def test_its_libraries_come_first_on_the_library_path(monkeypatch, tmp_path):
    monkeypatch.setattr(perf, "library_dir", lambda: tmp_path)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/elsewhere")
    assert perf.environment()["LD_LIBRARY_PATH"] == f"{tmp_path}:/elsewhere"


def test_its_library_links_live_in_this_environment_and_point_into_its_wheel(monkeypatch, tmp_path):
    monkeypatch.setattr(perf.sys, "prefix", str(tmp_path))
    folder = perf.library_dir()
    assert folder == tmp_path / "perf_analyzer.libs"
    for soname in perf.SONAMES:
        assert (folder / soname).resolve().parent.name == "nvidia_pytriton.libs"
    assert perf.library_dir() == folder


@pytest.mark.parametrize(
    "left",
    ["a dangling link", "a link to another file", "a folder", "a file"],
)
def test_whatever_was_left_in_place_of_a_link_is_replaced(monkeypatch, tmp_path, left):
    monkeypatch.setattr(perf.sys, "prefix", str(tmp_path))
    folder = perf.library_dir()
    for soname in perf.SONAMES:
        link = folder / soname
        link.unlink()
        if left == "a dangling link":
            link.symlink_to(tmp_path / "gone" / soname)
        elif left == "a link to another file":
            link.symlink_to("/etc/hostname")
        elif left == "a folder":
            link.mkdir()
        else:
            link.write_text("junk")
    perf.library_dir()
    for soname in perf.SONAMES:
        assert (folder / soname).resolve().parent.name == "nvidia_pytriton.libs"


def test_a_library_that_is_not_one_of_its_own_is_removed_from_the_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(perf.sys, "prefix", str(tmp_path))
    planted = perf.library_dir() / "libz.so.1"
    planted.write_text("someone else's code")
    perf.library_dir()
    assert not planted.exists()


@pytest.mark.parametrize("left", ["a file", "a dangling link"])
def test_whatever_was_left_in_place_of_the_folder_is_replaced(monkeypatch, tmp_path, left):
    monkeypatch.setattr(perf.sys, "prefix", str(tmp_path))
    folder = tmp_path / "perf_analyzer.libs"
    if left == "a file":
        folder.write_text("junk")
    else:
        folder.symlink_to(tmp_path / "gone")
    assert perf.library_dir() == folder and folder.is_dir() and not folder.is_symlink()


def test_a_folder_that_cannot_be_made_is_a_perf_analyzer_error(monkeypatch, tmp_path):
    monkeypatch.setattr(perf.sys, "prefix", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(perf.PerfAnalyzerError, match="cannot make perf_analyzer's library folder"):
        perf.library_dir()


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


CSV = (
    "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n"
    "32,100.0,1000,2000,3000,4000\n"
)


def fake_perf_analyzer(tmp_path: Path, failures: list[str]) -> Path:
    """A stand-in binary that prints the next of `failures` and exits 3 (one per call) until none
    are left, then writes its CSV report; every call's arguments go to calls.txt."""
    script = tmp_path / "perf_analyzer"
    (tmp_path / "failures.txt").write_text("\n".join(failures))
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import sys, pathlib\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "with (here / 'calls.txt').open('a') as calls: calls.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "failures = [f for f in (here / 'failures.txt').read_text().splitlines() if f]\n"
        "if failures:\n"
        "    (here / 'failures.txt').write_text('\\n'.join(failures[1:]))\n"
        "    print(failures[0]); sys.exit(3)\n"
        f"pathlib.Path(sys.argv[sys.argv.index('-f') + 1]).write_text({CSV!r})\n"
    )
    script.chmod(0o755)
    return script


def calls(tmp_path: Path) -> list[list[str]]:
    return [line.split() for line in (tmp_path / "calls.txt").read_text().splitlines()]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture
def run_fake(monkeypatch, tmp_path):
    def run(failures: list[str], extra: list[str] | None = None) -> perf.PerfResult:
        monkeypatch.setattr(perf, "binary", lambda: fake_perf_analyzer(tmp_path, failures))
        monkeypatch.setattr(perf, "library_dir", lambda: tmp_path)
        data = perf.write_input_data(tmp_path / "data.json", [{}])
        return perf.run(
            "digits", "127.0.0.1:1", 32, data, 300, 3, work_dir=tmp_path / "work", extra=extra
        )

    return run


def test_a_window_in_which_no_request_completed_is_retried_four_times_as_long(run_fake, tmp_path):
    result = run_fake(["No valid requests recorded within time interval."] * 2)
    assert [flag(argv, "-p") for argv in calls(tmp_path)] == ["300", "1200", "4800"]
    assert result.throughput == 100.0 and result.p99_ms == 4.0


def test_an_unstable_measurement_is_retried_with_four_more_trials(run_fake, tmp_path):
    run_fake(["Failed to obtain stable measurement within 3 measurement windows"])
    assert [flag(argv, "-r") for argv in calls(tmp_path)] == ["3", "7"]
    assert [flag(argv, "-p") for argv in calls(tmp_path)] == ["300", "300"]


def test_any_other_failure_is_raised_without_a_retry(run_fake, tmp_path):
    with pytest.raises(perf.PerfAnalyzerError, match=r"failed \(3\): .*Unable to connect"):
        run_fake(["Unable to connect to the server"])
    assert len(calls(tmp_path)) == 1


def test_a_third_failure_is_raised(run_fake, tmp_path):
    with pytest.raises(perf.PerfAnalyzerError, match="No valid requests"):
        run_fake(["No valid requests recorded within time interval."] * 3)
    assert len(calls(tmp_path)) == 3


def test_each_failure_widens_its_own_flag_and_a_repeated_flag_is_widened_where_it_counts(
    run_fake, tmp_path
):
    run_fake(["no stable measurement", "No valid requests recorded"], extra=["-p", "500"])
    assert [(argv[-1], flag(argv, "-r")) for argv in calls(tmp_path)] == [
        ("500", "3"), ("500", "7"), ("2000", "7"),
    ]  # fmt: skip


@pytest.mark.parametrize("window_ms", [250.0, 0, "300"])
def test_a_window_that_is_not_a_positive_int_is_refused_before_perf_analyzer_runs(
    window_ms, tmp_path
):
    with pytest.raises(ValueError, match="positive integers"):
        perf.run("digits", "127.0.0.1:1", 32, tmp_path / "data.json", window_ms)

"""perf_analyzer (the tritonclient 2.51 wheel's binary), as the benchmarks run it and as users do.

The binary needs `libcudart.so.12` and `libb64.so.0d`; the nvidia-pytriton wheel ships both under
hashed names, so they are linked under their sonames into a private folder on LD_LIBRARY_PATH.
The benchmarks give it a JSON file of many distinct requests (perf_analyzer cycles through them),
so no cache anywhere can answer from memory.

Users run it with its libraries found, against Triton or the gateway, with perf_analyzer's own
arguments (the first three are the same command):

    make perf-analyzer ARGS="-m digits -u 127.0.0.1:8080 -i http"
    python -m benchmarks.perf -m digits -u 127.0.0.1:8080 -i http
    perf-analyzer -m digits -u 127.0.0.1:8081 -i grpc      # the console script (pip install)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from numbers import Integral
from pathlib import Path
from typing import NoReturn

SONAMES = {"libcudart.so.12": "libcudart-", "libb64.so.0d": "libb64-"}


class PerfAnalyzerError(RuntimeError):
    pass


def binary() -> Path:
    found = Path(sys.executable).parent / "perf_analyzer"
    if found.exists():
        return found
    which = shutil.which("perf_analyzer")
    if which:
        return Path(which)
    raise PerfAnalyzerError("perf_analyzer not found: pip install 'tritonclient[all]==2.51.0'")


def library_dir() -> Path:
    """`<sys.prefix>/perf_analyzer.libs`: perf_analyzer's libraries under their sonames, as links
    into the nvidia-pytriton wheel's `nvidia_pytriton.libs`, remade as needed.

    The folder lives in this environment (a virtualenv's root), not in a shared temp folder where
    another user could make it first and put libraries of theirs on perf_analyzer's library
    path. Anything in it but the links is removed; several processes may make it at once.
    PerfAnalyzerError when the wheel or a library is missing, or the folder cannot be made.
    """
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise PerfAnalyzerError(
            "nvidia-pytriton is not installed (its libraries serve perf_analyzer)"
        )
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "nvidia_pytriton.libs"
    sources = {}
    for soname, prefix in SONAMES.items():
        candidates = sorted(libs.glob(f"{prefix}*"))
        if not candidates:
            raise PerfAnalyzerError(f"{prefix}* missing in {libs}")
        sources[soname] = candidates[0]
    target = Path(sys.prefix) / "perf_analyzer.libs"
    try:
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        target.mkdir(exist_ok=True)
        for entry in target.iterdir():
            if entry.name not in sources and not entry.name.startswith("."):
                _remove(entry)
        for soname, source in sources.items():
            _link(target / soname, source)
    except OSError as error:
        message = f"cannot make perf_analyzer's library folder {target}: {error}"
        raise PerfAnalyzerError(message) from None
    return target


def _remove(path: Path) -> None:
    """Remove a file, a link or a folder with what it holds."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _link(link: Path, source: Path) -> None:
    """Make `link` point at `source`, replacing whatever is there in one rename (os.replace), so a
    process racing this one never sees a missing or half-made link."""
    if link.is_symlink() and os.readlink(link) == str(source):
        return
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # os.replace cannot put a link over a folder
    temporary = link.with_name(f".{link.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(source)
    os.replace(temporary, link)


def environment() -> dict[str, str]:
    """This process's environment with perf_analyzer's libraries first on LD_LIBRARY_PATH."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(library_dir()), env.get("LD_LIBRARY_PATH")])
    )
    return env


def main(argv: list[str] | None = None) -> NoReturn:
    """Replace this process with perf_analyzer, its libraries found, given `argv` (default: this
    command's arguments) unchanged. Exits 2 with one line when the binary or a library is missing."""
    args = sys.argv[1:] if argv is None else argv
    try:
        path, env = binary(), environment()
    except PerfAnalyzerError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    os.execve(path, [str(path), *args], env)


@dataclass
class PerfResult:
    model: str
    url: str
    concurrency: int
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p95_ms: float
    queue_us: float | None
    compute_us: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def write_input_data(path: Path, rows: list[dict]) -> Path:
    """rows: one dict per request, input name -> {"content": flat list, "shape": [...]}."""
    path.write_text(json.dumps({"data": rows}))
    return path


def run(
    model: str,
    url: str,
    concurrency: int,
    input_data: Path,
    window_ms: int = 2000,
    trials: int = 3,
    timeout_s: float = 120.0,
    work_dir: Path | None = None,
    extra: list[str] | None = None,
    protocol: str = "grpc",
) -> PerfResult:
    """One perf_analyzer measurement of `model` at `url` over `protocol` (grpc or http) at one
    concurrency, cycling through `input_data`; its p50/p90/p95/p99 in ms and inferences/s.

    A loaded machine fails a measurement in two ways, retried up to twice in all: too noisy for
    a stable measurement (retried with 4 more trials) and no request completed inside the window
    (retried with a window four times as long). `timeout_s` is for the first run; a retry's
    timeout grows with its windows x trials.

    Raises PerfAnalyzerError when it still fails, or times out; ValueError when concurrency,
    window_ms or trials is not a positive int.
    """
    if not all(isinstance(n, Integral) and n > 0 for n in (concurrency, window_ms, trials)):
        raise ValueError(f"concurrency, window_ms and trials are positive integers: "
                         f"{concurrency!r}, {window_ms!r}, {trials!r}")  # fmt: skip
    work_dir = work_dir or Path(tempfile.mkdtemp())
    work_dir.mkdir(parents=True, exist_ok=True)
    report = work_dir / f"perf-{model}-c{concurrency}.csv"
    command = [
        str(binary()),
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "--concurrency-range",
        f"{concurrency}:{concurrency}",
        "-p",
        str(window_ms),
        "-s",
        "1000",
        "-r",
        str(trials),
        "--input-data",
        str(input_data),
        "-f",
        str(report),
        *(extra or []),
    ]
    env = environment()
    for _ in range(3):
        grown = _flag(command, "-p") * _flag(command, "-r") / (window_ms * trials)
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s * grown, env=env
            )
        except subprocess.TimeoutExpired as error:
            raise PerfAnalyzerError(f"perf_analyzer timed out after {error.timeout}s") from error
        if done.returncode == 0 or not _widen(command, done.stdout + done.stderr):
            break
    if done.returncode != 0 or not report.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
        raise PerfAnalyzerError(f"perf_analyzer failed ({done.returncode}): " + " | ".join(tail))
    with report.open() as handle:
        row = next(csv.DictReader(handle))

    def us(key: str) -> float | None:
        return float(row[key]) if row.get(key) not in (None, "") else None

    return PerfResult(
        model=model,
        url=url,
        concurrency=concurrency,
        throughput=float(row["Inferences/Second"]),
        p50_ms=float(row["p50 latency"]) / 1000,
        p90_ms=float(row["p90 latency"]) / 1000,
        p99_ms=float(row["p99 latency"]) / 1000,
        p95_ms=float(row["p95 latency"]) / 1000,
        queue_us=us("Server Queue"),
        compute_us=us("Server Compute Infer"),
    )


def _widen(command: list[str], output: str) -> bool:
    """Widen `command` in place for the failure perf_analyzer printed in `output`: 4 more trials
    when it found no stable measurement, a 4x window when no request completed inside one.
    False when the failure is neither (a retry would fail the same way)."""
    if "stable measurement" in output:
        flag, grow = "-r", lambda value: value + 4
    elif "No valid requests recorded" in output:
        flag, grow = "-p", lambda value: value * 4
    else:
        return False
    command[_last(command, flag) + 1] = str(grow(_flag(command, flag)))
    return True


def _last(command: list[str], flag: str) -> int:
    """Index of the last `flag` in `command` (perf_analyzer takes the last of a repeated flag)."""
    return len(command) - 1 - command[::-1].index(flag)


def _flag(command: list[str], flag: str) -> int:
    return int(command[_last(command, flag) + 1])


if __name__ == "__main__":
    main()

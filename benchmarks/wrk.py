"""Closed-loop HTTP load with wrk, for throughput numbers that the load generator does not cap.

On a 2-core machine a Python generator (benchmarks.loadgen) takes most of a core from the server
it measures; wrk (C, one thread) takes a fraction. `available()` says whether it is installed
(`make tools` installs it); callers fall back to the Python generator otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from benchmarks.loadgen import LoadResult

MARK = "WRK_RESULT "
# Lua: POST the body from a file; at the end print the numbers as one JSON line.
SCRIPT = """
local file = io.open(%(body)s, "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
"""
DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "errors": %%d, "mean_us": %%f, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""
SCRIPT += DONE


class WrkError(RuntimeError):
    pass


MISSING = "wrk is not installed: `make tools` installs it (Debian's package `wrk`)"


def available() -> bool:
    return shutil.which("wrk") is not None


def require() -> None:
    """WrkError (`MISSING`) when wrk is not on PATH: checked before a benchmark starts a stack."""
    if not available():
        raise WrkError(MISSING)


def run(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    work_dir: Path,
    warmup_s: float = 1.0,
) -> LoadResult:
    """`concurrency` connections POSTing `body` for `duration_s` (after an unrecorded warm-up)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    body_file = work_dir / "wrk-body.json"
    body_file.write_bytes(body)
    script = work_dir / "wrk.lua"
    script.write_text(SCRIPT % {"body": json.dumps(str(body_file)), "mark": MARK})
    return _measure(url, script, concurrency, duration_s, warmup_s)


# Lua: POST {"model": M, "inputs": {"text": [[S]]}} with S = a sentence from a file, a run nonce
# and a counter, so no two requests (of one run or two) share a cache key: every one is a miss.
UNIQUE_TEXTS = (
    """
local sentences = {}
for line in io.lines(%(sentences)s) do sentences[#sentences + 1] = line end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local text = sentences[(counter %% #sentences) + 1] .. " " .. %(nonce)s .. counter
  local body = '{"model": "' .. %(model)s .. '", "inputs": {"text": [["' .. text .. '"]]}}'
  return wrk.format(nil, nil, nil, body)
end
"""
    + DONE
)


def run_unique_texts(
    url: str,
    model: str,
    sentences: list[str],
    concurrency: int,
    duration_s: float,
    work_dir: Path,
    nonce: str,
    warmup_s: float = 1.0,
) -> LoadResult:
    """`concurrency` connections POSTing one text each to `url` (the gateway's /predict) for
    `model`, every request a new text (`UNIQUE_TEXTS`); sentences must not contain `"` or `\\`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    listing = work_dir / "sentences.txt"
    listing.write_text("\n".join(sentences) + "\n")
    script = work_dir / "wrk-unique.lua"
    quoted = {k: json.dumps(v) for k, v in (("sentences", str(listing)), ("model", model))}
    script.write_text(UNIQUE_TEXTS % {**quoted, "nonce": json.dumps(nonce), "mark": MARK})
    return _measure(url, script, concurrency, duration_s, warmup_s)


def _measure(
    url: str, script: Path, concurrency: int, duration_s: float, warmup_s: float
) -> LoadResult:
    if warmup_s > 0:
        _wrk(url, script, concurrency, warmup_s)
    numbers = _wrk(url, script, concurrency, duration_s)
    seconds = numbers["duration_us"] / 1e6
    ok = numbers["requests"] - numbers["errors"]
    return LoadResult(
        target=f"{url} (wrk)",
        concurrency=concurrency,
        duration_s=seconds,
        requests=ok,
        errors=numbers["errors"],
        throughput=ok / seconds if seconds else 0.0,
        p50_ms=numbers["p50_us"] / 1000,
        p90_ms=numbers["p90_us"] / 1000,
        p99_ms=numbers["p99_us"] / 1000,
        mean_ms=numbers["mean_us"] / 1000,
    )


def _wrk(url: str, script: Path, concurrency: int, duration_s: float) -> dict:
    seconds = max(1, round(duration_s))
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except FileNotFoundError:
        raise WrkError(MISSING) from None
    line = next((out for out in done.stdout.splitlines() if out.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        raise WrkError(
            f"wrk failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-400:]}"
        )
    return json.loads(line[len(MARK) :])

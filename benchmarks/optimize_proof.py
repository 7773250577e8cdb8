"""`python -m benchmarks optimize-compare MODEL --default REPO --tuned REPO`: the served default
configuration against the tuned one, same load generator, same traffic, alternating rounds.

Each repository is served by its own tritonserver (the twin repository `make up` derives, holding
only the name clients call and what it depends on); both stay up and perf_analyzer measures them
in turn (default, tuned, default, ...) so a drift of a shared machine lands on both alike. The
traffic is the tuner's (`benchmarks.tuning_server.request_rows`): unique short sentences for a
text model, the calibration rows otherwise. The result is each side's median throughput and p99
over its rounds, and their ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import perf
from benchmarks import sweep as bt
from benchmarks.tuned_config import RECORD
from benchmarks.tuning import find_target
from benchmarks.tuning_server import request_rows
from localstack.tritonserver import derive_local_repository


def called_name(repository: Path, model: str) -> str:
    """The name a client calls in `repository`: the tuned record's `call`, else the entry."""
    record = repository / model / RECORD
    if record.exists():
        return json.loads(record.read_text())["call"]
    return find_target(repository, model).entry


def _serve(stack: ExitStack, repository: Path, name: str, work: Path) -> bt.TritonServer:
    canonical = bt.write_canonical_variant(repository, work / "canonical", {}, keep=[name])
    derive_local_repository(canonical, work / "repository")
    return stack.enter_context(bt.TritonServer(work / "run", work / "repository"))


def compare(
    model: str,
    default: Path,
    tuned: Path,
    out: Path,
    concurrency: int = 32,
    slo_p99_ms: float = 100.0,
    rounds: int = 3,
    window_ms: int = 3000,
) -> dict:
    """Alternating perf_analyzer rounds against both deployments; writes and returns
    `<out>/compare-<model>.json` (per-round numbers, medians, the tuned/default ratio)."""
    target = find_target(default, model)
    sides = {"default": default, "tuned": tuned}
    names = {side: called_name(repo, model) for side, repo in sides.items()}
    data = perf.write_input_data(out / f"requests-{model}.json", request_rows(default, target))
    rows: dict[str, list[dict]] = {side: [] for side in sides}
    load = [list(os.getloadavg())]
    with ExitStack() as stack:
        servers = {
            side: _serve(stack, repo, names[side], out / f"work-{model}-{side}")
            for side, repo in sides.items()
        }
        for _ in range(rounds):
            for side, server in servers.items():
                result = perf.run(
                    names[side], server.grpc_url, concurrency, data, window_ms, 3, work_dir=out
                )
                rows[side].append(result.to_dict())
        load.append(list(os.getloadavg()))
    for side in sides:
        shutil.rmtree(out / f"work-{model}-{side}", ignore_errors=True)
    summary = {side: _median(rows[side], slo_p99_ms) for side in sides}
    document = {
        "model": model,
        "called": names,
        "concurrency": concurrency,
        "slo_p99_ms": slo_p99_ms,
        "load_generator": "perf_analyzer 2.51, gRPC, closed loop, distinct requests",
        "rounds": rows,
        "median": summary,
        "throughput_ratio": summary["tuned"]["throughput"] / summary["default"]["throughput"],
        "load_average": {"before": load[0], "after": load[-1]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / f"compare-{model}.json").write_text(json.dumps(document, indent=2) + "\n")
    return document


def _median(rows: list[dict], slo_p99_ms: float) -> dict:
    throughput = statistics.median(r["throughput"] for r in rows)
    p99 = statistics.median(r["p99_ms"] for r in rows)
    return {"throughput": throughput, "p99_ms": p99, "meets_slo": p99 <= slo_p99_ms}

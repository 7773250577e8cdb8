"""Per-row against whole-request caching on MiniLM text (issue 17.5): `make bench-rowcache`.

One stack (redis-server, tritonserver, both gateways) serves two copies of the MiniLM text
ensemble: `minilm_text` (per-row cache, its default) and `minilm_text_whole` (the same
steps with `row_cache: "false"`: one entry per whole request). The same Go closed-loop client
(benchmarks/row_load, built as build/row-load) sends requests of `batch` sentences of which 0 %,
50 % and 90 % come from a pool sent once before (warm), the rest new, through gateway-grpc;
for each share it measures both models in turn. Rows sent to Triton are Triton's own count
(nv_inference_count of the ensemble) between the window's scrapes. Writes results.json and
README.md to `out`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from benchmarks.scrape import scrape, value
from conversion.triton_config import read_config, write_config
from localstack.stack import LocalStack, StackPorts

ROW_LOAD = Path("build/row-load")
MODELS = ("minilm_tokenizer", "minilm", "minilm_text")
PER_ROW, WHOLE = "minilm_text", "minilm_text_whole"


@dataclass(frozen=True)
class Load:
    """How hard and how long: sentences per request, pool size, callers, seconds per window."""

    batch: int = 32
    pool: int = 512
    concurrency: int = 4
    seconds: float = 20.0
    shares: tuple[float, ...] = (0.0, 0.5, 0.9)


def repository(source: Path, target: Path) -> Path:
    """The MiniLM INT8 text models from `source`, plus the whole-request copy of the ensemble."""
    for model in MODELS:
        shutil.copytree(source / model, target / model)
    config = read_config(source / PER_ROW / "config.pbtxt")
    config.name = WHOLE
    config.parameters["row_cache"].string_value = "false"
    shutil.copytree(source / PER_ROW, target / WHOLE, ignore=shutil.ignore_patterns("config.pbtxt"))
    write_config(config, target / WHOLE / "config.pbtxt")
    return target


def row_load(target: str, model: str, load: Load, share: float, warm: bool = False) -> dict:
    """One run of build/row-load: its JSON report (nothing for -warm)."""
    command = [str(ROW_LOAD), f"-target={target}", f"-model={model}", f"-batch={load.batch}"]
    command += [f"-pool={load.pool}", f"-concurrency={load.concurrency}", f"-seen={share}"]
    command += ["-warm"] if warm else [f"-duration={load.seconds}s"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def rows_computed(stack: LocalStack, model: str) -> float:
    """Triton's nv_inference_count of `model` once settled: Triton counts an inference after its
    response, so read until two reads 0.2 s apart agree."""
    read = lambda: value(scrape(stack.urls["triton metrics"]), "nv_inference_count", model=model)  # noqa: E731
    count, previous = read(), -1.0
    while count != previous:
        time.sleep(0.2)
        count, previous = read(), count
    return count


def window(stack: LocalStack, model: str, load: Load, share: float) -> dict:
    """One measured window: the client's report, rows Triton computed, the load average."""
    before = rows_computed(stack, model)
    report = row_load(stack.urls["gateway gRPC"], model, load, share)
    report["rows_to_triton"] = rows_computed(stack, model) - before
    report["load_average_1m"] = os.getloadavg()[0]
    return {"model": model, "seen_share": share, **report}


def run(source: Path, work: Path, load: Load) -> list[dict]:
    """Start a stack on free ports, warm both models with the pool, measure every share."""
    stack = LocalStack(work / "stack", repository(source, work / "repository"), StackPorts.free())
    stack.start()
    try:
        for model in (PER_ROW, WHOLE):
            row_load(stack.urls["gateway gRPC"], model, load, 0.0, warm=True)
        return [window(stack, m, load, s) for s in load.shares for m in (PER_ROW, WHOLE)]
    finally:
        stack.stop()


def markdown(rows: list[dict], load: Load) -> str:
    lines = [
        f"Requests of {load.batch} sentences, {load.concurrency} callers, {load.seconds:g} s "
        "per window, through gateway-grpc (build/row-load).",
        "",
        "| seen rows | cache | rows to Triton | rows to Triton per request | req/s | p50 ms | "
        "p99 ms | X-Cache | load avg 1m |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_request = r["rows_to_triton"] / r["requests"] if r["requests"] else 0.0
        cache = "per row" if r["model"] == PER_ROW else "whole request"
        lines.append(
            f"| {r['seen_share']:.0%} | {cache} | {r['rows_to_triton']:.0f} | {per_request:.1f} "
            f"| {r['requests_per_s']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
            f"{json.dumps(r['x_cache'], sort_keys=True)} | {r['load_average_1m']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(
    out: Path = typer.Option(Path("docs/results/row-cache"), help="Report folder."),
    source: Path = typer.Option(Path("model_repository"), help="Model repository to copy from."),
    work: Path = typer.Option(Path("build/bench-rowcache"), help="Scratch folder (emptied)."),
    seconds: float = typer.Option(20.0, help="Seconds per window."),
    batch: int = typer.Option(32, help="Sentences per request."),
    pool: int = typer.Option(512, help="Sentences seen before."),
    concurrency: int = typer.Option(4, help="Callers in the closed loop."),
) -> None:
    """Measure and write results.json and table.md to `out`."""
    load = Load(batch, pool, concurrency, seconds)
    shutil.rmtree(work, ignore_errors=True)
    rows = run(source, work, load)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "table.md").write_text(markdown(rows, load))
    print(markdown(rows, load))


if __name__ == "__main__":
    typer.run(main)

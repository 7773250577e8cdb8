"""The MiniLM text path end to end against the bare served model, and where the difference goes.

`python -m benchmarks.text_path --repository R --variant V [--repository R0 --variant V0 ...]`:
for each (repository, variant), one local stack on free ports, then, at one concurrency:

1. end to end: wrk (C) POSTs unique short sentences to the Python gateway's /predict for
   `<V>_text` (tokenizer -> model ensemble), a run nonce and a counter in every text so that each
   request is a cache miss; the CPU seconds each component used during the run (tritonserver with
   its python-backend stubs, the gateway, Redis, gateway-grpc), per request;
2. Triton direct, the same ensemble: perf_analyzer (C++) over gRPC with the same sentences
   (the gateway's share is the difference);
3. the bare served model: perf_analyzer with the same sentences tokenized and padded to their
   length bucket as the tokenizer model pads them (the tokenizer hop's share is the difference);
4. the padding: tokens sent after bucket padding against the sentences' own tokens, and Triton's
   average batch of the model during the end-to-end run (`nv_inference_count / exec_count`).

Writes `<out>/results.json`; prints one line per stack.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict
from pathlib import Path

import typer

from benchmarks import payloads, perf, wrk
from benchmarks.scrape import scrape, value
from conversion import minilm, tokenizer_model
from localstack.stack import LocalStack, StackPorts

app = typer.Typer(add_completion=False)
TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant (from /proc/<pid>/task/*/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if task.exists() else []
            queue.extend(int(c) for c in children)
    return found


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 for a gone process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def stub_model(pid: int) -> str | None:
    """The model a python-backend stub serves (its first argument is `<repo>/<model>/<v>/model.py`)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if len(arguments) < 2 or not arguments[1].endswith(b"model.py"):
        return None
    return Path(arguments[1].decode()).parent.parent.name


def component_cpu(local: LocalStack) -> dict[str, float]:
    """{component: CPU seconds so far} of the stack's running components, tritonserver's
    python-backend stubs apart as `stubs:<model>`."""
    found: dict[str, float] = {}
    for name, state in local.component_states().items():
        for member in process_tree(state.pid) if state.pid else []:
            model = stub_model(member) if name == "triton" else None
            key = f"stubs:{model}" if model else name
            found[key] = found.get(key, 0.0) + own_cpu_seconds(member)
    return found


def text_rows(sentences: list[str]) -> list[dict]:
    """perf_analyzer input rows for a `<model>_text` ensemble (BYTES `text`, shape [1])."""
    return [{"text": {"content": [s], "shape": [1]}} for s in sentences]


def token_rows(sentences: list[str]) -> tuple[list[dict], float]:
    """perf_analyzer rows of each sentence tokenized and padded to its bucket, as the tokenizer
    model pads it; and the padded share (tokens sent / the sentences' own tokens)."""
    tokenizer = minilm.load_tokenizer()
    rows, sent, own = [], 0, 0
    for sentence in sentences:
        ids, mask = tokenizer_model.encode(tokenizer, [sentence], tokenizer_model.BUCKETS)
        sent, own = sent + ids.shape[1], own + int(mask.sum())
        rows.append(
            {
                "input_ids": {"content": ids[0].tolist(), "shape": [ids.shape[1]]},
                "attention_mask": {"content": mask[0].tolist(), "shape": [mask.shape[1]]},
            }
        )
    return rows, sent / own


def average_batch(local: LocalStack, model: str) -> tuple[float, float]:
    """Triton's (inferences, executions) of `model` so far."""
    samples = scrape(local.urls["triton metrics"])
    return (
        value(samples, "nv_inference_count", model=model),
        value(samples, "nv_inference_exec_count", model=model),
    )


def perf_or_error(model: str, url: str, concurrency: int, data: Path, work: Path) -> dict:
    """perf_analyzer's numbers (3 s windows) as a dict, or {"error": why} when it fails (e.g.
    requests timed out in Triton's queue): the end-to-end run already measured stays recorded."""
    try:
        return perf.run(model, url, concurrency, data, 3000, work_dir=work).to_dict()
    except perf.PerfAnalyzerError as error:
        return {"error": str(error)[:2000]}


def measure(
    repository: Path,
    variant: str,
    sentences: list[str],
    concurrency: int,
    seconds: float,
    work: Path,
) -> dict:
    """Every number of one stack (see the module docstring)."""
    local = LocalStack(work / "run", repository, StackPorts.free())
    local.start()
    try:
        url, nonce = local.urls["gateway"] + "/predict", secrets.token_hex(4)
        wrk.run_unique_texts(
            url, f"{variant}_text", sentences, concurrency, 3, work, "w" + nonce, 0
        )
        cpu_before, batch_before = component_cpu(local), average_batch(local, variant)
        end_to_end = wrk.run_unique_texts(
            url, f"{variant}_text", sentences, concurrency, seconds, work, nonce, 0
        )
        cpu_after, batch_after = component_cpu(local), average_batch(local, variant)
        grpc = local.urls["triton gRPC"]
        texts = perf.write_input_data(work / "texts.json", text_rows(sentences))
        direct = perf_or_error(f"{variant}_text", grpc, concurrency, texts, work)
        rows, padded_share = token_rows(sentences)
        tokens = perf.write_input_data(work / "tokens.json", rows)
        bare = perf_or_error(variant, grpc, concurrency, tokens, work)
    finally:
        local.stop()
    done = end_to_end.requests + end_to_end.errors
    inferences = batch_after[0] - batch_before[0]
    return {
        "variant": variant,
        "repository": str(repository),
        "end_to_end": asdict(end_to_end),
        "cpu_ms_per_request": {
            name: round(1000 * (cpu_after[name] - cpu_before.get(name, 0.0)) / max(done, 1), 3)
            for name in cpu_after
        },
        "model_average_batch": round(inferences / max(batch_after[1] - batch_before[1], 1), 2),
        "triton_direct_ensemble": direct,
        "bare_model": bare,
        "padded_tokens_per_own_token": round(padded_share, 3),
        "end_to_end_share_of_bare_model": (
            round(end_to_end.throughput / bare["throughput"], 3) if "throughput" in bare else None
        ),
    }


@app.command()
def main(
    repository: list[Path] = typer.Option(..., help="Model repository (repeat, one per variant)."),
    variant: list[str] = typer.Option(..., help="Served model behind `<variant>_text` (repeat)."),
    concurrency: int = 32,
    seconds: float = 20.0,
    sentences: int = 4000,
    out: Path = Path("reports/text-path"),
) -> None:
    """Measure each (repository, variant) in turn; write `<out>/results.json`."""
    try:
        wrk.require()
    except wrk.WrkError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    texts = payloads.short_sentences(sentences)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index, (repo, name) in enumerate(zip(repository, variant, strict=True)):
        started = time.time()
        row = measure(repo, name, texts, concurrency, seconds, out / f"work-{index}-{name}")
        row["load_average_after"] = os.getloadavg()
        row["wall_s"] = round(time.time() - started, 1)
        results.append(row)
        e2e = row["end_to_end"]
        bare = row["bare_model"]
        bare_line = (
            f"{bare['throughput']:.0f}/s" if "throughput" in bare else f"failed: {bare['error']}"
        )
        typer.echo(
            f"{name}: {e2e['throughput']:.0f} req/s p99 {e2e['p99_ms']:.1f} ms end to end "
            f"({e2e['errors']} errors); bare model {bare_line[:200]}; "
            f"share {row['end_to_end_share_of_bare_model']}; load {row['load_average_after']}"
        )
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    app()

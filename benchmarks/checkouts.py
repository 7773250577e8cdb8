"""`make up` of several checkouts end to end, one after the other, under the same traffic.

`python -m benchmarks.checkouts --checkout OLD --model M0 --checkout NEW --model M1`: for each
checkout in turn, its own `python -m localstack up` (its code, its converted `model_repository`,
as `make up` starts it, on free ports so that a running stack is left alone), then wrk (C) POSTs
unique short sentences to its gateway's `/predict` for the named model (every request a cache
miss, as benchmarks.text_path sends them), then its `localstack down`. This compares what users
ran at two commits (e.g. the stack an issue was filed against and this one), which
benchmarks.text_path cannot: it serves every repository with the current code.

Each checkout must be the top of a git work tree with its converted models (`make convert` there)
and a `.venv` whose Python runs its code (run from the checkout, `python -m` imports the
checkout's packages first); all are checked before anything starts. A stack is brought down
whatever ends its run (an error, Ctrl-C).

Writes `<out>/results.json` after each checkout (the ones measured so far); prints one line per
checkout with its ratio to the first.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import asdict
from pathlib import Path

import httpx
import typer

from benchmarks import payloads, wrk

START_TIMEOUT_S = 900

app = typer.Typer(add_completion=False)


class CheckoutError(RuntimeError):
    """A checkout that cannot be measured: not a checkout, no venv or models, a stack that did
    not start, a model it does not serve."""


def localstack(checkout: Path, command: str, run_dir: Path, *options: str) -> None:
    """Run `python -m localstack <command> --run-dir run_dir [options]` with the checkout's venv,
    from the checkout. Raises CheckoutError with the command's last output lines when it fails."""
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "localstack", command, "--run-dir", str(run_dir), *options],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise CheckoutError(f"localstack {command} in {checkout} failed:\n{tail}")


def gateway_url(run_dir: Path) -> str:
    """The HTTP gateway's URL: the GATEWAY_PORT its supervisor gave it (supervisor.json names
    each component's pid; every localstack version sets that variable)."""
    state = json.loads((run_dir / "supervisor.json").read_text())
    pid = state["components"]["gateway"]["pid"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    port = next(v.split(b"=", 1)[1] for v in environ if v.startswith(b"GATEWAY_PORT="))
    return f"http://127.0.0.1:{port.decode()}"


def git(checkout: Path, *args: str) -> str:
    """What `git -C checkout <args>` prints, stripped; CalledProcessError if it fails."""
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit_of(checkout: Path) -> str:
    """The HEAD commit of a checkout that can be measured, with `+changes` when its work tree
    differs from it. CheckoutError when `checkout` is not the top of a git work tree, or has no
    `.venv` or no `model_repository`."""
    try:
        top = Path(git(checkout, "rev-parse", "--show-toplevel")).resolve()
    except (subprocess.CalledProcessError, OSError):
        raise CheckoutError(f"{checkout} is not a git checkout") from None
    if top != checkout:
        raise CheckoutError(f"{checkout} is not the top of a checkout ({top} is)")
    if not (checkout / ".venv" / "bin" / "python").exists():
        raise CheckoutError(f"{checkout} has no .venv: run `make install` there")
    if not (checkout / "model_repository").is_dir():
        raise CheckoutError(f"{checkout} has no model_repository: run `make convert` there")
    dirty = git(checkout, "status", "--porcelain", "--untracked-files=no")
    return git(checkout, "rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")


def measure(
    checkout: Path, model: str, sentences: list[str], concurrency: int, seconds: float, work: Path
) -> dict:
    """End to end of one checkout's stack: wrk's numbers after a 3 s warm-up (LoadResult)."""
    run_dir = work / "run"
    try:
        localstack(checkout, "up", run_dir, "--free-ports")
        gateway = gateway_url(run_dir)
        ready = httpx.get(f"{gateway}/v2/models/{model}/ready", timeout=30)
        if ready.status_code != 200:
            raise CheckoutError(f"{checkout} does not serve '{model}' (HTTP {ready.status_code})")
        url, nonce = gateway + "/predict", secrets.token_hex(4)
        wrk.run_unique_texts(url, model, sentences, concurrency, 3, work, "w" + nonce, 0)
        result = wrk.run_unique_texts(url, model, sentences, concurrency, seconds, work, nonce, 0)
    finally:
        localstack(checkout, "down", run_dir)
    return {
        "checkout": str(checkout),
        "model": model,
        "end_to_end": asdict(result),
        "load_average_after": os.getloadavg(),
    }


@app.command()
def main(
    checkout: list[Path] = typer.Option(..., help="A checkout to `make up` (repeat)."),
    model: list[str] = typer.Option(..., help="The text model to ask, one per checkout."),
    concurrency: int = typer.Option(32, min=1),
    seconds: float = typer.Option(20.0, min=1.0, help="Measured seconds (wrk: whole seconds)."),
    sentences: int = typer.Option(4000, min=1),
    out: Path = Path("reports/checkouts"),
) -> None:
    """Measure each checkout's stack in turn; write `<out>/results.json`."""
    if len(checkout) != len(model):
        raise typer.BadParameter(f"{len(checkout)} --checkout but {len(model)} --model: one each")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out {out} is a file, not a folder")
    try:
        wrk.require()
        commits = [commit_of(path.resolve()) for path in checkout]
    except (CheckoutError, wrk.WrkError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    texts = payloads.short_sentences(sentences)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").unlink(missing_ok=True)  # never left to pass for this run's
    results = []
    for index, (path, name) in enumerate(zip(checkout, model, strict=True)):
        try:
            row = measure(path.resolve(), name, texts, concurrency, seconds, out / f"work-{index}")
        except (CheckoutError, wrk.WrkError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        results.append({**row, "commit": commits[index]})
        (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
        first, e2e = results[0]["end_to_end"]["throughput"], row["end_to_end"]
        ratio = f"{e2e['throughput'] / first:.2f}x the first" if first else "the first made none"
        typer.echo(
            f"{commits[index]} {name}: {e2e['throughput']:.0f} req/s p99 {e2e['p99_ms']:.1f} ms "
            f"({e2e['errors']} errors); {ratio}"
        )


if __name__ == "__main__":
    app()

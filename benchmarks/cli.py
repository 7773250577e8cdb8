"""`python -m benchmarks run|gateway|report|rank|loadtest|gpu|optimize`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


@app.command()
def run(
    tiny: bool = typer.Option(
        False, "--tiny", help="Seconds, not minutes: digits only, short windows."
    ),
    out: Path = typer.Option(None, help="Report folder (default reports/bench-<UTC time>)."),
    repository: Path = typer.Option(Path("model_repository"), help="Canonical model repository."),
    slo_p99_ms: float = typer.Option(100.0, help="Latency objective for 'best config' and cost."),
    families: str = typer.Option(
        "", help="Comma-separated subset: digits,minilm (default: all present)."
    ),
    sections: str = typer.Option("model,baseline,sweep,hardware", help="Sections to run."),
    import_results: list[Path] = typer.Option(
        [], "--import", help="bench-hardware/1 JSON files or folders."
    ),
    prices: Path = typer.Option(None, help="Price table YAML (default benchmarks/prices.yaml)."),
) -> None:
    """Naive vs optimized, technique rows, config sweep, hardware cost: JSON + Markdown + PNG."""
    from benchmarks import hardware
    from benchmarks.suite import Bench, Settings

    overrides = {
        "slo_p99_ms": slo_p99_ms,
        "imports": list(import_results),
        "prices": prices or hardware.DEFAULT_PRICES,
        "sections": tuple(s.strip() for s in sections.split(",") if s.strip()),
    }
    if families:
        overrides["families"] = tuple(f.strip() for f in families.split(",") if f.strip())
    settings = Settings.tiny_settings(**overrides) if tiny else Settings(**overrides)
    out = out or Path("reports") / f"bench-{_stamp()}{'-tiny' if tiny else ''}"
    bench = Bench(settings, repository, out)
    try:
        folder = bench.run()
    except RuntimeError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"report: {folder / 'report.md'}")
    if bench.results["errors"]:
        console.print(
            f"[yellow]{len(bench.results['errors'])} section(s) failed; see results.json[/yellow]"
        )
        raise typer.Exit(2)


@app.command()
def gateway(
    out: Path = typer.Option(None, help="Report folder (default reports/gateway-<UTC time>)."),
    repository: Path = typer.Option(Path("model_repository"), help="Canonical model repository."),
    workers: str = typer.Option("1,2", help="Gateway worker counts to measure, comma-separated."),
    duration_s: float = typer.Option(5.0, help="Seconds of closed-loop hits per worker count."),
    sequential: int = typer.Option(500, help="Sequential hits for the latency numbers."),
    pinned: bool = typer.Option(
        True, help="Also measure each worker count pinned to CPUs (GATEWAY_CPUS)."
    ),
    miss_rounds: int = typer.Option(5, help="Runs of the paired miss client."),
    miss_calls: int = typer.Option(1000, help="Calls per target in each run of the miss client."),
    http_requests: int = typer.Option(
        2000, help="Requests per perf_analyzer -i http measurement (misses, hits)."
    ),
) -> None:
    """The gateway's own cost: hit latency and hits/s (HTTP), miss overhead against Triton direct
    (gRPC), perf_analyzer -i http misses and hits (binary and JSON)."""
    from benchmarks import gateway as gateway_bench

    out = out or Path("reports") / f"gateway-{_stamp()}"
    counts = tuple(int(w) for w in workers.split(",") if w.strip())
    result = gateway_bench.run(
        repository,
        out,
        counts,
        duration_s,
        sequential,
        pinned,
        miss_rounds,
        miss_calls,
        http_requests,
    )
    console.print(gateway_bench.markdown(result))
    console.print(f"report: {out / 'gateway.md'}")


@app.command()
def report(
    results: Path = typer.Argument(..., help="results.json of a bench run"),
    out: Path = typer.Option(None, help="Folder (default: beside results.json)."),
) -> None:
    """Re-render report.md and the plots from a recorded results.json."""
    from benchmarks import report as render

    data = json.loads(results.read_text())
    folder = render.render(data, out or results.parent)
    console.print(f"report: {folder / 'report.md'}")


@app.command()
def rank(
    results: list[Path] = typer.Argument(..., help="bench-hardware/1 JSON files or folders"),
    prices: Path = typer.Option(None, help="Price table YAML (default benchmarks/prices.yaml)."),
    out: Path = typer.Option(None, help="Write cost.md and cost.png here."),
) -> None:
    """Cost per 1,000 inferences from hardware JSON files (this host's and imported ones)."""
    from benchmarks import hardware
    from benchmarks import report as render

    ranking = hardware.rank(
        hardware.load_imports(list(results)),
        hardware.load_prices(prices or hardware.DEFAULT_PRICES),
    )
    text = render.cost_markdown(ranking)
    console.print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "cost.md").write_text(text)
        render.cost_plot(ranking, out / "cost.png")


@app.command()
def loadtest(
    host: str = typer.Option("", help="Gateway URL; empty: start a local stack on free ports."),
    grpc_host: str = typer.Option("", help="Gateway gRPC host:port (default: the stack's)."),
    users: int = typer.Option(16, help="Concurrent Locust users."),
    spawn_rate: float = typer.Option(16, help="Users started per second."),
    run_time: str = typer.Option("30s", help="Bounded duration (Locust -t)."),
    classes: str = typer.Option(
        "RepeatHttpUser,UniqueHttpUser,MixedHttpUser", help="User classes."
    ),
    model: str = typer.Option("digits", help="Model for the scenarios."),
    slo_p99_ms: float = typer.Option(250.0, help="p99 objective (ms)."),
    slo_error_rate: float = typer.Option(0.01, help="Error-rate objective."),
    out: Path = typer.Option(None, help="Folder (default reports/loadtest-<UTC time>)."),
    repository: Path = typer.Option(Path("model_repository"), help="For the local stack."),
    gateway_pid: int = typer.Option(
        0, help="Gateway pid to sample with --host (default: the local stack's)."
    ),
    rss_interval: float = typer.Option(2.0, help="Seconds between gateway RSS samples."),
    soak: bool = typer.Option(
        False, "--soak", help="Soak verdict: zero failures, RSS steady after warm-up."
    ),
    max_rss_growth_pct: float = typer.Option(
        10.0, help="Soak: RSS growth after warm-up, % (<0: off)."
    ),
    max_rss_growth_mb: float = typer.Option(
        20.0, help="Soak: RSS growth after warm-up, MB (<0: off)."
    ),
    warmup: float = typer.Option(0.5, help="Soak: share of the run not judged for RSS growth."),
) -> None:
    """Headless Locust for a bounded time: CSV, HTML, JSON, gateway RSS CSV/PNG and summary.md; exit 1
    when an SLO is broken (with --soak also on any failed request or RSS growth after warm-up)."""
    from benchmarks import loadtest as lt
    from benchmarks.memory import SoakLimits

    out = out or Path("reports") / f"{'soak' if soak else 'loadtest'}-{_stamp()}"
    code = lt.run(
        host=host,
        grpc_host=grpc_host,
        users=users,
        spawn_rate=spawn_rate,
        run_time=run_time,
        classes=[c for c in classes.split(",") if c],
        model=model,
        slo_p99_ms=slo_p99_ms,
        slo_error_rate=slo_error_rate,
        out=out,
        repository=repository,
        gateway_pid=gateway_pid or None,
        rss_interval_s=rss_interval,
        soak=soak,
        limits=SoakLimits(max_rss_growth_pct, max_rss_growth_mb, warmup),
    )
    raise typer.Exit(code)


@app.command()
def optimize(
    model: str = typer.Argument(
        ..., help="Converted model name (digits, minilm, NAME of make convert)."
    ),
    slo_p99_ms: float = typer.Option(100.0, help="p99 objective (ms) at --concurrency."),
    concurrency: int = typer.Option(32, help="Outstanding client requests the objective is for."),
    budget_min: float = typer.Option(10.0, help="Search budget in minutes (wall clock)."),
    remeasure: bool = typer.Option(
        False, "--remeasure", help="Measure again even when tuning.json matches model and machine."
    ),
    repository: Path = typer.Option(Path("model_repository"), help="Canonical model repository."),
    out: Path = typer.Option(None, help="Report folder (default reports/optimize-<model>-<time>)."),
    variants: str = typer.Option("", help="Comma-separated subset of the gated variants."),
    window_ms: int = typer.Option(1500, help="perf_analyzer measurement window (ms)."),
) -> None:
    """Tune MODEL's served variant, batching and instances on this machine; write the winner into
    the repository (make up serves it), tuning.json beside it, and a Markdown + PNG report."""
    from benchmarks.optimize import Options, TuningError
    from benchmarks.optimize import optimize as run_optimize

    options = Options(
        model, repository, slo_p99_ms, concurrency, budget_min, remeasure, out,
        tuple(v for v in variants.split(",") if v), window_ms,
    )  # fmt: skip
    try:
        record = run_optimize(options, console)
    except TuningError as error:
        Console(stderr=True).print(f"error: {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    winner = record["winner"]
    console.print(
        f"call {record['call']} -> {winner['point']['label']}: "
        f"{winner['throughput'] or 0:.0f} inf/s, p99 {winner['p99_ms'] or 0:.1f} ms "
        f"({(record['gain']['throughput_ratio'] or 0):.2f}x the served configuration); "
        f"report {record['report']}",
        soft_wrap=True,
    )


@app.command("optimize-compare")
def optimize_compare(
    model: str = typer.Argument(..., help="Converted model name."),
    default: Path = typer.Option(Path("model_repository"), help="Repository as served before."),
    tuned: Path = typer.Option(..., help="Repository after `optimize`."),
    out: Path = typer.Option(None, help="Folder (default reports/optimize-compare-<time>)."),
    concurrency: int = typer.Option(32, help="Outstanding client requests."),
    slo_p99_ms: float = typer.Option(100.0, help="p99 objective (ms)."),
    rounds: int = typer.Option(3, help="Alternating rounds per deployment."),
    window_ms: int = typer.Option(3000, help="perf_analyzer measurement window (ms)."),
) -> None:
    """The default and the tuned deployment, same generator and traffic, in alternating rounds."""
    from benchmarks.optimize_proof import compare

    out = out or Path("reports") / f"optimize-compare-{_stamp()}"
    out.mkdir(parents=True, exist_ok=True)
    done = compare(model, default, tuned, out, concurrency, slo_p99_ms, rounds, window_ms)
    for side, numbers in done["median"].items():
        console.print(
            f"{side:>7} {done['called'][side]}: {numbers['throughput']:.0f} inf/s, "
            f"p99 {numbers['p99_ms']:.1f} ms (meets SLO: {numbers['meets_slo']})"
        )
    console.print(f"tuned / default throughput: {done['throughput_ratio']:.2f}x")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def gpu(ctx: typer.Context) -> None:
    """GPU script (FP32/FP16/INT8 x batch sizes, serving): see `python -m benchmarks gpu --help`."""
    from benchmarks import gpu as gpu_script

    sys.exit(gpu_script.main(ctx.args))

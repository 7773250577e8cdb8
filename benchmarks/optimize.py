"""`python -m benchmarks optimize MODEL` (`make optimize MODEL=...`): from a converted model to a
tuned, served configuration on this machine, in one command.

Steps: convert the model when it is a demo model not yet converted (`conversion.demo`; other
models: `make optimize MODEL=pkg.mod:factory NAME=...` converts through `make convert` first);
reuse `<model>/tuning.json` when the model files, the objective and the machine are unchanged
(unless `remeasure`); else search (`benchmarks.tuning`) through a real tritonserver, write the
winner into the repository (`benchmarks.tuned_config`), record it and render the report
(`benchmarks.tuning_report`). `make up` then serves the tuned configuration.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks import hardware, tuning_report
from benchmarks.sweep import ConfigPoint
from benchmarks.tuned_config import record_key, reusable, write_record, write_served
from benchmarks.tuning import Budget, Search, Target, Trial, TuningError, find_target, served_point
from benchmarks.tuning_server import Measurement, TrialServer

LOAD_GENERATOR = "perf_analyzer 2.51, gRPC, closed loop, distinct requests"


@dataclass(frozen=True)
class Options:
    """One `optimize` run: budget in minutes, window in ms; `variants` limits the candidates."""

    model: str
    repository: Path = Path("model_repository")
    slo_p99_ms: float = 100.0
    concurrency: int = 32
    budget_min: float = 10.0
    remeasure: bool = False
    out: Path | None = None
    variants: tuple[str, ...] = ()
    window_ms: int = 1500


def ensure_converted(repository: Path, model: str, console: Console) -> None:
    """Convert a demo model (`conversion.demo.DEMO_MODELS`) whose manifest.json is missing."""
    if (repository / model / "manifest.json").exists():
        return
    from conversion.demo import DEMO_MODELS  # torch: imported only when a conversion is due

    if model in DEMO_MODELS:
        console.print(f"[bold]{model}[/] is not converted yet: converting it first")
        DEMO_MODELS[model](repository)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[stage]:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[left]:>6} left | best {task.fields[best]}"),
        TextColumn("{task.description}", style="dim"),
        console=console,
        transient=False,
    )


def measurement(options: Options) -> Measurement:
    """perf_analyzer's settings for every trial: the options' window, a probe a third as long
    (at least 200 ms), 3 trials, the options' concurrency."""
    return Measurement(
        concurrency=options.concurrency,
        window_ms=options.window_ms,
        probe_window_ms=max(200, options.window_ms // 3),
    )


def search(options: Options, target: Target, work: Path, console: Console) -> Search:
    """Run the search through one tritonserver, with a progress bar; returns the finished Search."""
    how = measurement(options)
    baseline = served_point(options.repository, target.encoder_step)
    budget = Budget(options.budget_min * 60)
    with TrialServer(options.repository, work, target, how) as server, _progress(console) as bar:
        task = bar.add_task("starting tritonserver", total=1, stage="start", left="", best="-")

        def advance(trial: Trial | None, planned: int) -> None:
            bar.update(task, total=max(planned, 1), left=f"{max(budget.left(), 0):.0f}s")
            if trial is None:
                return
            lead = found.winner()
            bar.update(
                task,
                advance=1,
                stage=trial.stage,
                description=f"{trial.point.label}: {trial.throughput or 0:.0f}/s, "
                f"p99 {trial.p99_ms or 0:.1f} ms {trial.stopped or trial.error}"[:110],
                best=f"{lead.throughput or 0:.0f}/s @ p99 {lead.p99_ms or 0:.1f} ms",
            )

        server.start(baseline)
        found = Search(
            target, server.measure, options.slo_p99_ms, options.concurrency, budget, advance
        )
        found.run(baseline)
    return found


def _why(search: Search, slo: float, concurrency: int) -> str:
    measured = [t for t in search.trials if t.ok]
    meeting = [t for t in measured if t.meets(slo)]
    if meeting:
        return (
            f"Chosen as the highest throughput with p99 <= {slo:g} ms at concurrency {concurrency} "
            f"among {len(measured)} fully measured trials ({len(meeting)} met the objective)."
        )
    return (
        f"No configuration met p99 <= {slo:g} ms at concurrency {concurrency}: the lowest p99 "
        f"of {len(measured)} fully measured trials was chosen."
    )


def _cost(winner: Trial, default: Trial, slo: float) -> dict:
    machine = hardware.local_hardware()
    entry = hardware.price_for(machine["id"], hardware.load_prices())
    cost = {"hardware_id": machine["id"], "instance": None, "usd_per_hour": None}
    if entry:
        cost.update(instance=entry["name"], usd_per_hour=entry["usd_per_hour"])
        for name, trial in (("winner", winner), ("default", default)):
            if trial.meets(slo):
                cost[f"{name}_usd_per_1k"] = hardware.cost_per_1k(
                    entry["usd_per_hour"], trial.throughput
                )
    return cost


def build_record(options: Options, target: Target, found: Search, key: dict, extra: dict) -> dict:
    """The tuning.json document of a finished search (schema 'optimize/1')."""
    winner, default = found.winner(), found.default()
    gain = (
        winner.throughput / default.throughput if winner.throughput and default.throughput else None
    )
    return {
        "schema": "optimize/1",
        "model": target.model,
        "entry": target.entry,
        "served_variant": winner.point.variant,
        # the name a client calls to get the winner: the stable text ensemble, else the variant
        "call": target.entry if target.ensemble else winner.point.variant,
        "key": key,
        "objective": {"slo_p99_ms": options.slo_p99_ms, "concurrency": options.concurrency},
        "load_generator": LOAD_GENERATOR,
        "budget_s": options.budget_min * 60,
        "budget_exhausted": found.exhausted,
        "candidates": list(target.candidates),
        "skipped": target.skipped,
        "trials": [t.as_dict() for t in found.trials],
        "winner": winner.as_dict(),
        "default": default.as_dict(),
        "why": _why(found, options.slo_p99_ms, options.concurrency),
        "gain": {"throughput_ratio": gain},
        "cost": _cost(winner, default, options.slo_p99_ms),
        **extra,
    }


def point_of(record: dict) -> ConfigPoint:
    """The winner's ConfigPoint from a tuning.json."""
    fields = {k: v for k, v in record["winner"]["point"].items() if k not in ("name", "label")}
    return ConfigPoint(**{**fields, "preferred": tuple(fields.get("preferred", ()))})


def optimize(options: Options, console: Console) -> dict:
    """Tune `options.model` (or reuse its record); returns the tuning.json document.

    Raises TuningError (one line, for the command to print) when the model is not converted or
    has no variant this machine can serve.
    """
    ensure_converted(options.repository, options.model, console)
    target = find_target(options.repository, options.model, options.variants)
    key = record_key(options.repository, target, options.slo_p99_ms, options.concurrency)
    record = None if options.remeasure else reusable(options.repository, target, key)
    if record is not None:
        changed = write_served(options.repository, target, point_of(record))
        console.print(
            f"reused {options.repository / target.model / 'tuning.json'} from {record['when']} "
            "(same model files, objective and machine; --remeasure to measure again)"
        )
        return {**record, "reused": True, "changed": changed}
    out = (
        options.out
        or Path("reports") / f"optimize-{options.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    work = out / "work"
    started, load_before = time.perf_counter(), os.getloadavg()
    found = search(options, target, work, console)
    changed = write_served(options.repository, target, found.winner().point)
    extra = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": time.perf_counter() - started,
        "load_average": {"before": _load(load_before), "after": _load(os.getloadavg())},
        "changed": changed,
        "report": str(out / "report.md"),
        "options": {k: str(v) for k, v in asdict(options).items()},
    }
    record = build_record(options, target, found, key, extra)
    write_record(options.repository, target, record)
    shutil.rmtree(work, ignore_errors=True)
    (out / "tuning.json").parent.mkdir(parents=True, exist_ok=True)
    tuning_report.render(record, out)
    (out / "tuning.json").write_text(
        (options.repository / target.model / "tuning.json").read_text()
    )
    return record


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


__all__ = ["Options", "TuningError", "optimize"]

"""The search behind `make optimize`: which served variant and which batching/instance configuration
give the highest throughput within a p99 objective at one client concurrency, on this machine.

Every trial is measured through the real tritonserver (the nvidia-pytriton wheel's, python-backend
twins running the ONNX files in ONNX Runtime, as `make up` serves them) with perf_analyzer (C++,
closed loop, `concurrency` outstanding requests, distinct inputs cycled from a JSON file). One
server runs for the whole search in explicit model-control mode: each trial's model is written into
its repository, loaded, measured and unloaded (Triton's repository API, POST
/v2/repository/models/<name>/load|unload).

The search is coordinate descent, not a grid (`plan_*` below): first every candidate variant at the
configuration served now, then, on the leading variant, instances x threads per instance, then
`max_queue_delay_microseconds` (ascending; larger delays are pruned once one breaks the objective
and is slower than the best before it), then `preferred_batch_size` and a larger `max_batch_size`,
then a confirmation round. `max_batch_size` never goes below the served one: a tuned config must
accept every request the default accepted. Each trial starts with a short probe and stops there
when its p99 is already `stop_factor` x the objective or its throughput cannot reach the best
feasible one so far (while no configuration meets the objective: when its p99 is `stop_factor` x
the lowest p99 measured so far, since the lowest p99 wins then). The first trial, the configuration
served now, is always measured in full. The whole search stops at its time budget with the best it
has.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from benchmarks import sweep as bt
from benchmarks.sweep import ConfigPoint
from conversion.triton_config import read_config


class TuningError(RuntimeError):
    """A model that cannot be tuned here (not converted, no servable variant, no request data)."""


@dataclass(frozen=True)
class Target:
    """What one `optimize MODEL` run tunes.

    `entry`: the name clients call, which stays stable (`<model>_text` when the conversion wrote a
    text ensemble: its encoder step is pointed at the winning variant; else `<model>`).
    `candidates`: gated, served variants this server can run, in manifest order.
    `skipped`: variant -> why it is not measured here (failed the gate, not served, needs a GPU...).
    """

    model: str
    entry: str
    encoder_step: str  # the ensemble step's model now (== entry for a plain model)
    tokenizer: str | None
    candidates: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ensemble(self) -> bool:
        return self.entry != self.encoder_step


def servable_here(config: mc.ModelConfig) -> str:
    """'' when the bundled tritonserver may serve this config through `make up`'s twins, else why
    not. Only TensorRT plans are refused up front; a backend the local stack cannot run shows as
    its trial's load error in the report."""
    if config.platform == "tensorrt_plan":
        return "TensorRT plan: served by the official image on a GPU host only"
    return ""


def manifest_variants(manifest: dict, repository: Path) -> dict[str, str]:
    """Every variant the manifest names -> '' (a gated, served candidate) or why it is not one.

    Read from `variants` (gate verdicts, `served_as`), `served`, and the TensorRT plans the
    `tensorrt` section says `conversion.tensorrt` builds as `<model>_trt_<precision>`.
    """
    found: dict[str, str] = {}
    for key, variant in manifest["variants"].items():
        name = variant.get("served_as")
        if not variant.get("passed"):
            found.setdefault(
                name or key, "failed the accuracy gate: " + "; ".join(variant.get("reasons", []))
            )
        elif not name:
            found[key] = f"not served: {variant.get('not_served') or 'no served_as'}"
        else:
            found[name] = ""
    plans = sorted(
        p.parent.name for p in repository.glob(f"{manifest['model']}_trt_*/config.pbtxt")
    )
    for name in [*manifest.get("served", []), *plans]:
        found.setdefault(name, "")
    return found


def find_target(repository: Path, model: str, only: tuple[str, ...] = ()) -> Target:
    """The entry point and candidate variants of converted `model`; TuningError when `model` has
    no manifest.json (not converted) or no candidate this server can run."""
    manifest_path = repository / model / "manifest.json"
    if not manifest_path.exists():
        converted = sorted(p.parent.name for p in repository.glob("*/manifest.json"))
        raise TuningError(
            f"no converted model '{model}' in {repository} (converted: "
            f"{', '.join(converted) or 'none'}); convert it first: make convert MODEL=... NAME={model}"
        )
    manifest = json.loads(manifest_path.read_text())
    entry = f"{model}_text" if (repository / f"{model}_text" / "config.pbtxt").exists() else model
    candidates, skipped = [], {}
    for name, why in manifest_variants(manifest, repository).items():
        path = repository / name / "config.pbtxt"
        if why or not path.exists():
            skipped[name] = why or "not in the repository"
            continue
        config = read_config(path)
        if config.platform == "ensemble" or name == f"{model}_tokenizer":
            continue  # the text path's parts (conversion.text_serving), not variants
        why = servable_here(config) or ("" if not only or name in only else "not asked for")
        if why:
            skipped[name] = why
        else:
            candidates.append(name)
    if not candidates:
        raise TuningError(f"'{model}': no gated variant this tritonserver can serve ({skipped})")
    encoder_step, tokenizer = model, None
    if entry != model:
        steps = [
            s.model_name
            for s in read_config(repository / entry / "config.pbtxt").ensemble_scheduling.step
        ]
        encoder_step = next((s for s in steps if s in candidates or s in skipped), model)
        tokenizer = next((s for s in steps if s != encoder_step), None)
    return Target(model, entry, encoder_step, tokenizer, tuple(candidates), skipped)


GRAPH_NAMES = {level: name for name, level in bt.GRAPH_LEVELS.items()}


def served_point(repository: Path, variant: str) -> ConfigPoint:
    """The knobs `<variant>/config.pbtxt` serves now, as a ConfigPoint."""
    config = read_config(repository / variant / "config.pbtxt")
    batching = config.HasField("dynamic_batching")
    level = config.optimization.graph.level if config.optimization.HasField("graph") else None
    knob = bt.threads_parameter(config)
    threads = config.parameters[knob].string_value if knob in config.parameters else "0"
    return ConfigPoint(
        variant,
        max_batch_size=config.max_batch_size,
        queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds if batching else None,
        instances=sum(g.count for g in config.instance_group) or 1,
        graph_level=GRAPH_NAMES.get(level, "all"),
        threads=int(threads or 0),
        preferred=tuple(config.dynamic_batching.preferred_batch_size),
    )


@dataclass
class Trial:
    """One measured configuration: perf_analyzer's numbers at the target concurrency.

    throughput: inferences/s; p50/p99: ms; avg_batch: rows per model execution (Triton metrics);
    stopped: why the trial ended at its probe ('' when fully measured); seconds: its wall time.
    """

    index: int
    stage: str
    point: ConfigPoint
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    avg_batch: float | None = None
    stopped: str = ""
    error: str = ""
    seconds: float = 0.0
    repeats: int = 1

    def meets(self, slo_p99_ms: float) -> bool:
        return self.ok and self.p99_ms is not None and self.p99_ms <= slo_p99_ms

    @property
    def ok(self) -> bool:
        return not self.stopped and not self.error and bool(self.throughput)

    def as_dict(self) -> dict:
        row = asdict(self)
        row["point"] = {**asdict(self.point), "name": self.point.name, "label": self.point.label}
        return row


def score(trial: Trial, slo_p99_ms: float) -> tuple:
    """Sort key, best last: meeting the objective, then throughput; else the lowest p99."""
    if not trial.ok:
        return (0, 0.0)
    if trial.meets(slo_p99_ms):
        return (2, trial.throughput)
    return (1, -(trial.p99_ms or float("inf")))


def best(trials: list[Trial], slo_p99_ms: float) -> Trial | None:
    """The winner among `trials` (see `score`); None when none was fully measured."""
    measured = [t for t in trials if t.ok]
    return max(measured, key=lambda t: score(t, slo_p99_ms)) if measured else None


DELAYS_US = (0, 200, 500, 1000, 2000, 4000, 8000)


def instance_options(cores: int) -> list[tuple[int, int]]:
    """(instances, threads per instance) pairs worth a trial on `cores` cores: one
    instance using them all, a few instances sharing them, one thread each, and twice as many
    single-thread instances as cores (the python backend's per-request work overlaps)."""
    pairs = [(1, cores), (2, max(cores // 2, 1)), (cores, 1), (1, 1), (2 * cores, 1)]
    return list(dict.fromkeys(pairs))


def preferred_options(concurrency: int, max_batch_size: int) -> list[tuple[int, ...]]:
    """preferred_batch_size choices: a quarter, half and all of the clients' outstanding requests."""
    sizes = {max(2, concurrency // 4), max(2, concurrency // 2), concurrency}
    return [(s,) for s in sorted(sizes) if s <= max_batch_size]


@dataclass(frozen=True)
class Limits:
    """When a trial's probe ends it: p99 above `p99_ms` (ms) or throughput below `throughput`
    (inferences/s). `Limits()` never stops a trial."""

    p99_ms: float = float("inf")
    throughput: float = 0.0


def limits(trials: list[Trial], slo_p99_ms: float, stop_factor: float, cannot_win: float) -> Limits:
    """Limits a new trial must pass to be measured in full, from the trials so far: with a
    configuration meeting the objective, `stop_factor` x the objective and `cannot_win` x the best
    throughput; without one, `stop_factor` x the lowest p99 (the lowest p99 wins then)."""
    feasible = [t.throughput for t in trials if t.meets(slo_p99_ms)]
    if feasible:
        return Limits(stop_factor * slo_p99_ms, cannot_win * max(feasible))
    measured = [t.p99_ms for t in trials if t.ok and t.p99_ms]
    return Limits(stop_factor * min(measured)) if measured else Limits()


@dataclass
class Budget:
    """Wall-clock budget of a search (seconds); a trial starts only if the mean so far still fits."""

    seconds: float
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)

    def allows(self, trials: list[Trial]) -> bool:
        typical = sum(t.seconds for t in trials) / len(trials) if trials else 0.0
        return self.left() > typical


class Search:
    """Coordinate descent over variant, instances x threads, delay, preferred/max batch size.

    `measure(index, stage, point, limits) -> Trial` runs one trial (a TrialServer's in practice, a
    fake in the logic tests; `limits` says when its probe ends it); `advance(trial, planned)` reports
    progress. `run(baseline)` returns every trial in order; the chosen one is `winner()`.
    """

    def __init__(
        self,
        target: Target,
        measure: Callable[[int, str, ConfigPoint, Limits], Trial],
        slo_p99_ms: float,
        concurrency: int,
        budget: Budget,
        advance: Callable[[Trial | None, int], None] = lambda trial, planned: None,
        cores: int | None = None,
        stop_factor: float = 2.0,
        cannot_win: float = 0.6,
    ) -> None:
        self.target, self.measure, self.slo = target, measure, slo_p99_ms
        self.concurrency, self.budget, self.advance = concurrency, budget, advance
        self.cores = cores or os.cpu_count() or 1
        self.trials: list[Trial] = []
        self.planned = 0
        self.exhausted = False
        self.stop_factor, self.cannot_win = stop_factor, cannot_win

    def _try(self, stage: str, point: ConfigPoint) -> Trial | None:
        if any(t.point == point and t.stage == stage for t in self.trials) or (
            stage != "confirm" and any(t.point == point for t in self.trials)
        ):
            return None
        if self.trials and not self.budget.allows(self.trials):
            self.exhausted = True
            return None
        bar = (  # a confirmation is a second full measurement, never stopped early
            Limits()
            if stage == "confirm"
            else limits(self.trials, self.slo, self.stop_factor, self.cannot_win)
        )
        trial = self.measure(len(self.trials) + 1, stage, point, bar)
        self.trials.append(trial)
        self.advance(trial, self.planned)
        return trial

    def _stage(self, stage: str, points: list[ConfigPoint]) -> list[Trial]:
        self.planned += len(points)
        done = [t for t in (self._try(stage, p) for p in points) if t is not None]
        self.advance(None, self.planned)
        return done

    def leader(self) -> ConfigPoint:
        found = best([t for t in self.trials if t.stage != "confirm"], self.slo)
        return found.point if found else self.trials[0].point

    def run(self, baseline: ConfigPoint) -> list[Trial]:
        """Every stage in turn, within the budget; the first trial is `baseline` (served now)."""
        others = [
            baseline.with_(variant=v) for v in self.target.candidates if v != baseline.variant
        ]
        self._stage("variant", [baseline, *others])
        lead = self.leader()
        self._stage(
            "instances",
            [lead.with_(instances=i, threads=t) for i, t in instance_options(self.cores)],
        )
        self._delays(self.leader())
        lead = self.leader()
        batch = [
            lead.with_(preferred=p)
            for p in preferred_options(self.concurrency, lead.max_batch_size)
        ]
        self._stage("batch", [*batch, lead.with_(max_batch_size=2 * lead.max_batch_size)])
        self._confirm(baseline)
        return self.trials

    def _delays(self, lead: ConfigPoint) -> None:
        """Queue delays away from the leader's, each direction in turn. Larger ones stop at the
        first that breaks the objective (a longer wait only adds latency) or after throughput fell
        twice in a row; smaller ones (fewer rows per batch) after throughput fell twice in a row."""
        current = lead.queue_delay_us or 0
        above = [d for d in DELAYS_US if d > current]
        below = sorted((d for d in DELAYS_US if d < current), reverse=True)
        self.planned += len(above) + len(below)
        for delays, prune_on_objective in ((below, False), (above, True)):
            previous, falls = None, 0
            for done, delay in enumerate(delays, start=1):
                trial = self._try("delay", lead.with_(queue_delay_us=delay))
                if trial is None:
                    continue
                slower = previous is not None and (trial.throughput or 0) < (
                    previous.throughput or 0
                )
                falls = falls + 1 if slower else 0
                broke = prune_on_objective and not trial.meets(self.slo) and not trial.error
                if broke or falls >= 2:
                    self.planned -= len(delays) - done  # pruned
                    break
                previous = trial
        self.advance(None, self.planned)

    def _confirm(self, baseline: ConfigPoint) -> None:
        """Measure the three best configurations and the baseline again; each confirm trial holds
        the mean of its two measurements, and the winner is chosen among them."""
        ranked = sorted(
            (t for t in self.trials if t.ok), key=lambda t: score(t, self.slo), reverse=True
        )
        points = list(dict.fromkeys([t.point for t in ranked[:3]] + [baseline]))
        for trial in self._stage("confirm", points):
            first = next(t for t in self.trials if t.point == trial.point and t.stage != "confirm")
            if trial.ok and first.ok:
                trial.throughput = (trial.throughput + first.throughput) / 2
                trial.p50_ms = (trial.p50_ms + first.p50_ms) / 2
                trial.p99_ms = (trial.p99_ms + first.p99_ms) / 2
                trial.repeats = 2

    def winner(self) -> Trial:
        """The best confirmed trial (or the best of all when the budget ended before confirming)."""
        confirmed = [t for t in self.trials if t.stage == "confirm" and t.ok]
        return best(confirmed, self.slo) or best(self.trials, self.slo) or self.trials[0]

    def default(self) -> Trial:
        """The served configuration's trial (its confirmed mean when there is one)."""
        baseline = self.trials[0].point
        confirmed = [t for t in self.trials if t.point == baseline and t.stage == "confirm"]
        return confirmed[-1] if confirmed and confirmed[-1].ok else self.trials[0]

"""`make bench`: naive server against the optimized stack, one row per technique, a config sweep
and the hardware cost ranking, written as JSON + Markdown + PNG under reports/bench-<time>/.

Every section is guarded: a failing one is recorded under `errors` and the others still run;
results.json is rewritten after each section, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import hardware, loadgen, modelbench, payloads, perf
from benchmarks import sweep as bt
from benchmarks.sweep import ConfigPoint

console = Console(stderr=True)
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Family:
    """A demo model and its variants in the canonical repository."""

    name: str  # digits | minilm
    kind: str  # image | text
    variants: dict[str, str]  # precision -> canonical model name (ONNX)
    stack_model: str  # what /predict is asked for on the optimized stack
    naive_model: str  # what the naive server loads
    primary: str = ""  # the ONNX variant the stack serves: swept in full
    has_portable: bool = False  # <fp32>/portable.onnx: the export before graph optimization

    @property
    def primary_variant(self) -> str:
        return self.primary or self.variants["fp32"]


def discover(repository: Path) -> list[Family]:
    present = {p.parent.name for p in repository.glob("*/config.pbtxt")}
    families = []
    if "digits" in present:
        variants = {
            p: n
            for p, n in (("fp32", "digits"), ("fp16", "digits_fp16"), ("int8", "digits_int8"))
            if n in present
        }
        families.append(
            Family(
                "digits",
                "image",
                variants,
                "digits",
                "digits",
                "digits",
                (repository / "digits" / "portable.onnx").exists(),
            )
        )
    if "minilm" in present and ({"minilm_text", "minilm_int8_text"} & present):
        variants = {
            p: n
            for p, n in (("fp32", "minilm"), ("fp16", "minilm_fp16"), ("int8", "minilm_int8"))
            if n in present
        }
        # the stack serves the fastest encoder that passed the gate: OpenVINO's INT8 where the
        # conversion served it (ORT's dynamic INT8 MiniLM is refused for batch dependence), else
        # OpenVINO's BF16 (served where not slower than FP32; on an Intel Xeon with AMX, level
        # with OpenVINO INT8, which the gate refuses there), else ORT's INT8, else FP32
        stacks = ("minilm_ov_int8_text", "minilm_ov_bf16_text", "minilm_int8_text", "minilm_text")
        stack = next(name for name in stacks if name in present)
        primary = stack.removesuffix("_text")
        families.append(
            Family(
                "minilm",
                "text",
                variants,
                stack,
                "minilm_text",
                primary,
                (repository / "minilm" / "portable.onnx").exists(),
            )
        )
    return families


@dataclass
class Settings:
    tiny: bool = False
    slo_p99_ms: float = 100.0
    duration_s: float = 3.0
    warmup_s: float = 1.0
    window_ms: int = 1000
    trials: int = 3
    baseline_concurrency: tuple[int, ...] = (1, 32)
    sweep_concurrency: tuple[int, ...] = (1, 8, 32)
    technique_concurrency: int = 32
    model_time_s: float = 0.6
    families: tuple[str, ...] = ("digits", "minilm")
    sections: tuple[str, ...] = ("model", "baseline", "sweep", "hardware")
    imports: list[Path] = field(default_factory=list)
    prices: Path = hardware.DEFAULT_PRICES

    @classmethod
    def tiny_settings(cls, **overrides) -> Settings:
        base = cls(
            tiny=True,
            duration_s=1.0,
            warmup_s=0.3,
            window_ms=400,
            trials=3,
            baseline_concurrency=(8,),
            sweep_concurrency=(1, 8),
            technique_concurrency=8,
            model_time_s=0.1,
            families=("digits",),
        )
        for key, value in overrides.items():
            setattr(base, key, value)
        return base


def sweep_points(family: Family, tiny: bool) -> list[ConfigPoint]:
    """Variants x (max_batch_size, max_queue_delay) x instances; concurrency is swept by the client.

    A full factorial on the variant the stack serves, the batching extremes on the others.
    Two instances on two cores get one ORT thread each (no oversubscription)."""
    primary = family.primary_variant
    if tiny:
        return [ConfigPoint(primary, queue_delay_us=None), ConfigPoint(primary, 64, 2000)]
    batching = [(None, None), (64, 500), (8, 2000), (64, 2000)]
    if family.name == "minilm":
        batching = [(None, None), (8, 2000), (64, 500), (64, 2000)]
    points = []
    for mbs, delay in batching:
        for instances in (1, 2):
            points.append(
                ConfigPoint(
                    primary, mbs or 64, delay, instances, threads=0 if instances == 1 else 1
                )
            )
    for name in family.variants.values():
        if name != primary:
            extremes = [(None, None), (64, 2000)]
            points += [ConfigPoint(name, mbs or 64, delay) for mbs, delay in extremes]
    return points


def technique_points(family: Family) -> dict[str, tuple[ConfigPoint, ConfigPoint]]:
    """technique -> (reference, with the technique alone switched on), served by Triton."""
    # base: two instances with one ORT thread each. On this 2-core box every single-instance
    # config with dynamic batching showed ~500 ms p99 stalls (even at concurrency 1) that two
    # instances never showed; a base that has them would bury every other effect
    fp32 = family.variants["fp32"]
    plain = ConfigPoint(fp32, 64, None, 2, "all", threads=1)
    rows = {"graph optimization": (plain.with_(graph_level="disable"), plain)}
    if family.has_portable:  # the conversion keeps the unoptimized export: compare against it
        rows["graph optimization"] = (plain.with_(graph_level="disable", portable=True), plain)
    for precision in ("fp16", "int8"):
        if precision in family.variants:
            rows[precision.upper()] = (plain, plain.with_(variant=family.variants[precision]))
    batch = 64 if family.name == "digits" else 32
    rows["dynamic batching"] = (plain, plain.with_(max_batch_size=batch, queue_delay_us=2000))
    return rows


class Bench:
    def __init__(self, settings: Settings, repository: Path, out_dir: Path) -> None:
        self.settings = settings
        self.repository = repository.resolve()
        self.out_dir = out_dir.resolve()
        self.work = self.out_dir / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.families = [f for f in discover(self.repository) if f.name in settings.families]
        self.results: dict = {
            "meta": {
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "tiny": settings.tiny,
                "slo_p99_ms": settings.slo_p99_ms,
                "settings": {
                    k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in vars(settings).items()
                    if k not in ("imports", "prices")
                },
                "hardware": hardware.local_hardware(),
                "git": _git_commit(),
                "families": {
                    f.name: {"variants": f.variants, "stack_model": f.stack_model}
                    for f in self.families
                },
                "load_generators": {
                    "http": "benchmarks.loadgen: asyncio + aiohttp closed loop, unique bodies",
                    "grpc": "perf_analyzer 2.51 (tritonclient wheel), JSON input data of distinct rows",
                },
            },
            "model_level": [],
            "baseline": [],
            "techniques": [],
            "sweep": [],
            "best": {},
            "gateway_grpc": None,
            "cost": None,
            "errors": [],
        }
        self.progress: Progress | None = None

    # ------------------------------------------------------------------ bookkeeping
    def save(self) -> Path:
        path = self.out_dir / "results.json"
        path.write_text(json.dumps(self.results, indent=2, default=_json_default))
        return path

    def section(self, name: str, call) -> None:
        if name not in self.settings.sections:
            return
        console.log(f"[bold]{name}[/bold]")
        try:
            call()
        except Exception as error:  # one failing section must not lose the others
            console.log(f"[red]{name} failed:[/red] {error}")
            self.results["errors"].append(
                {"section": name, "error": str(error), "trace": traceback.format_exc()[-2000:]}
            )
        self.save()

    def step(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=text)

    def run(self) -> Path:
        if not self.families:
            raise RuntimeError(f"no demo model in {self.repository}: run `make convert`")
        total = self.plan_size()
        with Progress(
            TextColumn("{task.description:<48}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            self.progress, self.task = progress, progress.add_task("bench", total=total)
            self.section("model", self.model_level)
            self.section("sweep", self.sweep)  # first: the stack is deployed with its best config
            self.section("baseline", self.baseline)
            self.section("hardware", self.hardware)
        self.results["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.save()
        from benchmarks import report

        report.render(self.results, self.out_dir)
        return self.out_dir

    def plan_size(self) -> int:
        s, n = self.settings, 0
        for family in self.families:
            n += len(family.variants) * 4 + 3
            n += len(s.baseline_concurrency) * 3 + 6
            points = set(sweep_points(family, s.tiny))
            for ref, on in technique_points(family).values():
                points |= {ref, on}
            n += len(sweep_points(family, s.tiny)) * len(s.sweep_concurrency) + 5
        return n

    # ------------------------------------------------------------------ model level
    def model_level(self) -> None:
        batches = (1, 32)
        for family in self.families:
            for precision, name in family.variants.items():
                onnx_file = self.repository / name / "1" / "model.onnx"
                runs = [(onnx_file, "all", name)]
                if precision == "fp32":
                    portable = self.repository / name / "portable.onnx"
                    runs.insert(
                        0,
                        (portable, "disable", f"{name} (unoptimized export)")
                        if portable.exists()
                        else (onnx_file, "disable", name),
                    )
                for path, level, label in runs:
                    for batch in batches:
                        self.step(f"model {label} {level} b{batch}")
                        row = modelbench.ort_throughput(
                            path, family.name, batch, level, self.settings.model_time_s
                        )
                        self.results["model_level"].append(
                            {
                                "family": family.name,
                                "variant": precision,
                                "model": label,
                                "runtime": "onnxruntime CPU",
                                **row,
                            }
                        )
            for threads in (0, 1):
                for batch in batches:
                    self.step(f"model {family.name} torch eager b{batch}")
                    row = modelbench.torch_throughput(
                        family.name, batch, self.repository, self.settings.model_time_s, threads
                    )
                    self.results["model_level"].append(
                        {
                            "family": family.name,
                            "variant": "fp32",
                            "model": family.naive_model,
                            "runtime": f"torch eager, {threads or 'default'} thread(s)",
                            **row,
                        }
                    )
            self.save()

    # ------------------------------------------------------------------ naive vs optimized
    def baseline(self) -> None:
        s = self.settings
        # the naive server twice: torch's default threads and one thread; each comparison uses
        # the faster of the two at that concurrency (the stronger baseline), both are recorded
        naive: dict[tuple[str, int], dict] = {}
        for family in self.families:
            for threads in (0,) if s.tiny else (0, 1):
                with NaiveServer(
                    family.naive_model, self.repository, self.work / "naive", threads
                ) as server:
                    for c in s.baseline_concurrency:
                        self.step(f"naive {family.name} c{c} threads {threads or 'default'}")
                        body = payloads.unique(family.kind, family.stack_model)
                        result = loadgen.run_http(
                            server.url, body, c, s.duration_s, s.warmup_s, target="naive"
                        ).to_dict()
                        result["torch_threads"] = threads or "default"
                        self.results.setdefault("naive_runs", []).append(
                            {"family": family.name, **result}
                        )
                        best = naive.get((family.name, c))
                        if best is None or result["throughput"] > best["throughput"]:
                            naive[(family.name, c)] = result
                    c = max(s.baseline_concurrency)  # the Zipf traffic too: same load as the stack
                    self.step(f"naive {family.name} zipf c{c}")
                    result = loadgen.run_http(
                        server.url,
                        payloads.repeated(family.kind, family.stack_model),
                        c,
                        s.duration_s,
                        s.warmup_s,
                        target="naive",
                    ).to_dict()
                    result["torch_threads"] = threads or "default"
                    best = naive.get((family.name, "zipf"))
                    if best is None or result["throughput"] > best["throughput"]:
                        naive[(family.name, "zipf")] = result
        stack_results = self._stack_runs(cache=True)
        nocache = self._stack_runs(cache=False)
        for family in self.families:
            for c in s.baseline_concurrency:
                optimized = stack_results[family.name][("unique", c)]
                self.results["baseline"].append(
                    _compare(
                        family.name,
                        "unique inputs (all cache misses)",
                        c,
                        naive[(family.name, c)],
                        optimized,
                        family,
                    )
                )
            c = max(s.baseline_concurrency)
            zipf = stack_results[family.name][("zipf", c)]
            self.results["baseline"].append(
                _compare(
                    family.name,
                    "Zipf repeats over 64 inputs (cache)",
                    c,
                    naive[(family.name, "zipf")],
                    zipf,
                    family,
                )
            )
            off, on = nocache[family.name][("zipf", c)], zipf
            self.results["techniques"].append(
                _technique(
                    family.name,
                    "cache",
                    "gateway HTTP, Zipf traffic, cache off",
                    "same traffic, Redis cache on",
                    off,
                    on,
                    c,
                )
            )
            hit = stack_results[family.name]["hit_latency"]
            miss = stack_results[family.name]["miss_latency"]
            self.results["techniques"].append(
                {
                    "family": family.name,
                    "technique": "cached answer latency",
                    "reference": "sequential cache misses through the gateway",
                    "with": "sequential cache hits through the gateway",
                    "reference_p50_ms": miss["p50_ms"],
                    "with_p50_ms": hit["p50_ms"],
                    "with_p99_ms": hit["p99_ms"],
                    "gain": miss["p50_ms"] / hit["p50_ms"],
                    "metric": "p50 latency ratio",
                    "path": "gateway HTTP, concurrency 1",
                    "hits": hit["cache_hits"],
                    "requests": hit["requests"],
                }
            )

    def _stack_runs(self, cache: bool) -> dict:
        s = self.settings
        from localstack.stack import LocalStack, StackPorts

        models = [f.stack_model for f in self.families]
        changes = {}
        for family in self.families:
            tuned = self.tuned_config(family)
            if tuned:
                changes[tuned["model"]] = tuned["change"]
        repo = bt.write_canonical_variant(
            self.repository, self.work / f"stack-repo-{cache}", changes, keep=models
        )
        env = {"GATEWAY_CACHE_ENABLED": "true" if cache else "false"}
        stack = LocalStack(
            self.work / f"stack-{'cache' if cache else 'nocache'}",
            repo,
            StackPorts.free(),
            gateway_env=env,
        )
        out: dict = {}
        self.step(f"start stack (cache {'on' if cache else 'off'})")
        stack.start()
        try:
            url = f"http://127.0.0.1:{stack.ports.gateway_http}/predict"
            metrics = f"http://127.0.0.1:{stack.ports.triton_metrics}/metrics"
            for family in self.families:
                runs: dict = {}
                model = family.stack_model
                batch_model = _batching_model(self.repository, model)
                if cache:
                    for c in s.baseline_concurrency:
                        self.step(f"stack {family.name} unique c{c}")
                        before = bt.scrape_counts(metrics)
                        result = loadgen.run_http(
                            url,
                            payloads.unique(family.kind, model),
                            c,
                            s.duration_s,
                            s.warmup_s,
                            target="optimized",
                        ).to_dict()
                        result["avg_batch"] = bt.average_batch(
                            before, bt.scrape_counts(metrics), batch_model
                        )
                        result["batch_model"] = batch_model
                        runs[("unique", c)] = result
                c = max(s.baseline_concurrency)
                self.step(f"stack {family.name} zipf c{c} cache {cache}")
                zipf = payloads.repeated(family.kind, model)
                if cache:  # warm: the hot set is in Redis, as in steady state
                    loadgen.run_http(url, zipf, 4, 0.5 if s.tiny else 1.0, 0)
                runs[("zipf", c)] = loadgen.run_http(
                    url, zipf, c, s.duration_s, s.warmup_s, target="optimized"
                ).to_dict()
                if cache:
                    self.step(f"stack {family.name} hit/miss latency")
                    count = 50 if s.tiny else 200
                    hot = payloads.body_for(family.kind, model)(10_000_000)
                    loadgen.sequential_latency(url, lambda hot=hot: hot, 2)
                    runs["hit_latency"] = loadgen.sequential_latency(
                        url, lambda hot=hot: hot, count
                    ).to_dict()
                    runs["miss_latency"] = loadgen.sequential_latency(
                        url, payloads.unique(family.kind, model), count
                    ).to_dict()
                    if family.name == self.families[0].name:
                        self.results["gateway_grpc"] = self._gateway_grpc(stack, family)
                out[family.name] = runs
        finally:
            stack.stop()
        return out

    def tuned_config(self, family: Family) -> dict | None:
        """The sweep's best config (within the SLO, at the baseline's concurrency) of the ONNX
        model the stack serves, applied to the stack's repository; None keeps the canonical one."""
        if family.name in self.results.setdefault("stack_config", {}):
            return self.results["stack_config"][family.name]
        model = _batching_model(self.repository, family.stack_model)
        c = max(self.settings.baseline_concurrency)
        # max_batch_size is part of the API (clients may send that many rows, and an ensemble
        # needs its steps to take at least its own): only configs that keep it are eligible
        from conversion.triton_config import read_config

        floor = max(
            read_config(self.repository / name / "config.pbtxt").max_batch_size
            for name in {model, family.stack_model}
        )
        rows = [
            r
            for r in self.results["sweep"]
            if r["family"] == family.name
            and r["variant"] == model
            and r["concurrency"] == c
            and r["graph_level"] == "all"
            and r["max_batch_size"] >= floor
        ]
        best = best_under_slo(rows, self.settings.slo_p99_ms)
        tuned = None
        if best.get("config"):
            tuned = {
                "model": model,
                "from_sweep": best["config"],
                "label": best["label"],
                "change": {
                    "max_batch_size": best["max_batch_size"],
                    "queue_delay_us": best["queue_delay_us"],
                    "instances": best["instances"],
                    "threads": best["threads"],
                },
            }
        self.results["stack_config"][family.name] = tuned
        return tuned

    def _gateway_grpc(self, stack, family: Family) -> dict:
        """perf_analyzer through the gateway's KServe v2 gRPC port, when the gateway has one."""
        target = f"127.0.0.1:{stack.ports.gateway_grpc}"
        if not _grpc_live(target):
            return {
                "available": False,
                "target": target,
                "note": "the gateway answers no KServe v2 gRPC on GATEWAY_GRPC_PORT yet; "
                "gateway measured over HTTP only",
            }
        data = self._perf_data(family, family.stack_model, 512, offset=50_000_000 + os.getpid())
        c = max(self.settings.baseline_concurrency)
        out = {"available": True, "target": target}
        try:
            # -x: repeats answered from the cache leave Triton's statistics still, and
            # perf_analyzer can then not tell the version from them; naming it works.
            result = perf.run(
                family.stack_model,
                target,
                c,
                data,
                self.settings.window_ms,
                self.settings.trials,
                work_dir=self.work / "perf",
                extra=["-x", "1"],
            )
            out["perf_analyzer"] = result.to_dict()
        except perf.PerfAnalyzerError as error:
            out["perf_analyzer_error"] = str(error)[-300:]
        # the same traffic with a Python KServe client (tritonclient.grpc.aio closed loop)
        out["aio_client"] = loadgen.run_grpc(
            target,
            family.stack_model,
            family.kind,
            c,
            self.settings.duration_s,
            self.settings.warmup_s,
        ).to_dict()
        return out

    # ------------------------------------------------------------------ sweep + techniques
    def _perf_data(self, family: Family, model: str, rows: int, offset: int = 0) -> Path:
        path = self.work / f"perf-data-{model}-{offset}.json"
        if path.exists():
            return path
        if family.kind == "image" and model.startswith("digits"):
            data = [
                {
                    "image": {
                        "content": payloads.digits_image(offset + i).ravel().tolist(),
                        "shape": [1, 8, 8],
                    }
                }
                for i in range(rows)
            ]
        elif model.endswith("_text"):
            data = [
                {"text": {"content": [payloads.sentence(offset + i)], "shape": [1]}}
                for i in range(rows)
            ]
        else:
            toks = modelbench.tokens([payloads.sentence(offset + i) for i in range(rows)])
            data = [
                {
                    name: {"content": toks[name][i].tolist(), "shape": [toks[name].shape[1]]}
                    for name in ("input_ids", "attention_mask")
                }
                for i in range(rows)
            ]
        (self.work).mkdir(parents=True, exist_ok=True)
        return perf.write_input_data(path, data)

    def sweep(self) -> None:
        s = self.settings
        for family in self.families:
            techniques = technique_points(family)
            points = list(
                dict.fromkeys(
                    sweep_points(family, s.tiny) + [p for pair in techniques.values() for p in pair]
                )
            )
            repo = self.work / f"sweep-repo-{family.name}"
            bt.write_repository(self.repository, repo, points)
            self.step(f"start triton: {len(points)} configs of {family.name}")
            measured: dict[tuple[ConfigPoint, int], dict] = {}
            with bt.TritonServer(self.work / f"sweep-{family.name}", repo) as server:
                data = {v: self._perf_data(family, v, 512) for v in family.variants.values()}

                def measure(
                    point: ConfigPoint, c: int, measured=measured, data=data, family=family
                ) -> dict:
                    if (point, c) in measured:
                        return measured[(point, c)]
                    self.step(
                        f"{point.variant} b{point.max_batch_size} "
                        f"d{point.queue_delay_us} i{point.instances} c{c}"
                    )
                    before = bt.scrape_counts(server.metrics_url)
                    try:
                        result = perf.run(
                            point.name,
                            server.grpc_url,
                            c,
                            data[point.variant],
                            s.window_ms,
                            s.trials,
                            work_dir=self.work / "perf",
                        ).to_dict()
                    except perf.PerfAnalyzerError as error:
                        result = {
                            "error": str(error),
                            "throughput": None,
                            "p50_ms": None,
                            "p99_ms": None,
                        }
                    result["avg_batch"] = bt.average_batch(
                        before, bt.scrape_counts(server.metrics_url), point.name
                    )
                    row = {
                        "family": family.name,
                        "variant": point.variant,
                        "max_batch_size": point.max_batch_size,
                        "queue_delay_us": point.queue_delay_us,
                        "instances": point.instances,
                        "graph_level": point.graph_level,
                        "threads": point.threads,
                        "config": point.name,
                        "label": point.label,
                        "concurrency": c,
                        **result,
                    }
                    measured[(point, c)] = row
                    return row

                for point in sweep_points(family, s.tiny):
                    for c in s.sweep_concurrency:
                        self.results["sweep"].append(measure(point, c))
                    self.save()
                c = s.technique_concurrency
                for technique, (ref, on) in techniques.items():
                    a, b = measure(ref, c), measure(on, c)
                    self.results["techniques"].append(
                        _technique(
                            family.name,
                            technique,
                            ref.label,
                            on.label,
                            a,
                            b,
                            c,
                            path="Triton gRPC (perf_analyzer), python-backend ORT",
                        )
                    )
                    self._model_level_gain(family, technique)
            self.results["best"][family.name] = best_under_slo(
                [r for r in self.results["sweep"] if r["family"] == family.name], s.slo_p99_ms
            )

    def _model_level_gain(self, family: Family, technique: str) -> None:
        """The same technique measured on the bare model (ORT session, batch 32)."""
        rows = [
            r
            for r in self.results["model_level"]
            if r["family"] == family.name and r["batch"] == 32 and r["runtime"] == "onnxruntime CPU"
        ]

        def find(v, lvl):
            return next((r for r in rows if r["variant"] == v and r["level"] == lvl), None)

        pair = {
            "graph optimization": (find("fp32", "disable"), find("fp32", "all")),
            "FP16": (find("fp32", "all"), find("fp16", "all")),
            "INT8": (find("fp32", "all"), find("int8", "all")),
        }.get(technique)
        if pair and all(pair):
            self.results["techniques"][-1]["model_only_gain"] = (
                pair[1]["samples_per_s"] / pair[0]["samples_per_s"]
            )

    # ------------------------------------------------------------------ hardware
    def hardware(self) -> None:
        s = self.settings
        results = []
        for family in self.families:
            best = self.results["best"].get(family.name)
            if best and best.get("config"):
                results.append(
                    {
                        "model": family.name,
                        "variant": best["variant"],
                        "path": f"Triton gRPC, {best['label']}, c{best['concurrency']}",
                        "throughput": best["throughput"],
                        "p99_ms": best["p99_ms"],
                    }
                )
            for row in self.results["baseline"]:
                if (
                    row["family"] == family.name
                    and row["scenario"].startswith("unique")
                    and row["concurrency"] == max(s.baseline_concurrency)
                ):
                    results.append(
                        {
                            "model": family.name,
                            "variant": "stack",
                            "path": f"optimized stack (gateway HTTP) {family.stack_model}, c{row['concurrency']}",
                            "throughput": row["optimized"]["throughput"],
                            "p99_ms": row["optimized"]["p99_ms"],
                        }
                    )
                    results.append(
                        {
                            "model": family.name,
                            "variant": "naive",
                            "path": f"naive FastAPI + eager PyTorch, c{row['concurrency']}",
                            "throughput": row["naive"]["throughput"],
                            "p99_ms": row["naive"]["p99_ms"],
                        }
                    )
        local = hardware.document(self.results["meta"]["hardware"], s.slo_p99_ms, results)
        (self.out_dir / "hardware.json").write_text(json.dumps(local, indent=2))
        imports = hardware.load_imports([hardware.RESULTS_DIR, *s.imports])
        prices = hardware.load_prices(s.prices)
        self.results["cost"] = {
            **hardware.rank([local, *imports], prices),
            "imported_from": [d["source"] for d in imports],
            "prices": str(s.prices),
        }


# ---------------------------------------------------------------------- helpers
def best_under_slo(rows: list[dict], slo_p99_ms: float) -> dict:
    ok = [
        r
        for r in rows
        if r.get("throughput") and r.get("p99_ms") is not None and r["p99_ms"] <= slo_p99_ms
    ]
    if not ok:
        return {"config": None, "note": f"no configuration met p99 <= {slo_p99_ms} ms"}
    return max(ok, key=lambda r: r["throughput"])


def _compare(family: str, scenario: str, c: int, naive: dict, optimized: dict, fam: Family) -> dict:
    return {
        "family": family,
        "scenario": scenario,
        "concurrency": c,
        "naive_model": f"{fam.naive_model} (eager PyTorch FP32)",
        "optimized_model": fam.stack_model,
        "naive": naive,
        "optimized": optimized,
        "throughput_ratio": _ratio(optimized["throughput"], naive["throughput"]),
        "p50_ratio": _ratio(optimized["p50_ms"], naive["p50_ms"]),
        "p99_ratio": _ratio(optimized["p99_ms"], naive["p99_ms"]),
    }


def _technique(
    family: str,
    technique: str,
    ref_label: str,
    on_label: str,
    ref: dict,
    on: dict,
    c: int,
    path: str = "gateway HTTP (aiohttp closed loop)",
) -> dict:
    return {
        "family": family,
        "technique": technique,
        "reference": ref_label,
        "with": on_label,
        "path": path,
        "concurrency": c,
        "reference_throughput": ref.get("throughput"),
        "with_throughput": on.get("throughput"),
        "reference_p99_ms": ref.get("p99_ms"),
        "with_p99_ms": on.get("p99_ms"),
        "avg_batch": on.get("avg_batch"),
        "gain": _ratio(on.get("throughput"), ref.get("throughput")),
        "metric": "throughput ratio",
    }


def _ratio(a, b):
    return a / b if a and b else None


def _batching_model(repository: Path, model: str) -> str:
    """The model whose executions show the batching: an ensemble's ONNX step, else itself."""
    from conversion.triton_config import read_config

    config = read_config(repository / model / "config.pbtxt")
    steps = [s.model_name for s in config.ensemble_scheduling.step]
    for step in steps:
        if (repository / step / "1" / "model.onnx").exists():
            return step
    return model


def _grpc_live(target: str) -> bool:
    try:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(target)
        try:
            return bool(client.is_server_live(client_timeout=2))
        finally:
            client.close()
    except Exception:
        return False


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(type(value))


class NaiveServer:
    """`python -m benchmarks.naive` on a free port, stopped by its own pid."""

    def __init__(self, model: str, repository: Path, run_dir: Path, threads: int = 0) -> None:
        from localstack.stack import StackPorts

        self.port = StackPorts.free().gateway_http
        self.model, self.repository, self.run_dir, self.threads = (
            model,
            repository,
            run_dir,
            threads,
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"

    def __enter__(self) -> NaiveServer:
        import urllib.request

        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / f"naive-{self.model}.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.naive",
                "--model",
                self.model,
                "--port",
                str(self.port),
                "--repository",
                str(self.repository),
                "--torch-threads",
                str(self.threads),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"naive server exited; see {log.name}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1),
            ):
                return self
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("naive server did not start within 120 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

"""The conversion pipeline: source -> ONNX -> optimized FP32 -> FP16 / INT8 -> gate -> repository.

Each step runs under its own progress bar (conversion.progress.Steps); a failure raises
StepError naming the step. Variants that fail the accuracy gate are not served, and a stale
copy from an earlier run is removed. `<repo>/<name>/manifest.json` records everything.
"""

from __future__ import annotations

import importlib
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from conversion import gate, latency, optimize, variants
from conversion.export import check_against_torch, export_onnx
from conversion.input_ranges import index_ranges
from conversion.progress import StepError, Steps
from conversion.repository import publish, remove
from conversion.spec import (
    Dataset,
    Gate,
    InputSpec,
    ServingOptions,
    SpecError,
    TensorRTShapes,
    TransformerHint,
)
from conversion.triton_config import Batching, ModelConfigSpec, Tensor

INT8_KINDS = ("int8_dynamic", "int8_static")
ALL_VARIANTS = ("fp16", *INT8_KINDS)
# served name suffix and the ORT-TensorRT precision of its configs/gpu.pbtxt
SERVED = {"fp32": ("", "FP16"), "fp16": ("_fp16", "FP16"), "int8": ("_int8", "FP16")}


@dataclass
class Job:
    """Everything one conversion needs. Give `model` (or `factory`) or `onnx_file`."""

    name: str
    inputs: list[InputSpec]
    output_names: list[str]
    calibration: Dataset
    validation: Dataset
    task: str = "classification"
    model: torch.nn.Module | None = None
    factory: str | None = None  # "package.module:function" returning an nn.Module
    onnx_file: Path | None = None
    gate: Gate = field(default_factory=Gate)
    transformer: TransformerHint | None = None
    variants: tuple[str, ...] = ALL_VARIANTS
    calibration_method: str = "minmax"
    calibration_batch_size: int = 16
    static_per_channel: bool = True
    static_op_types: list[str] | None = None
    static_keep_first_last: bool = False  # keep the first and last compute layers in FP32
    serving: ServingOptions = field(default_factory=ServingOptions)
    bench_batch_sizes: tuple[int, ...] = (1, 8, 32)
    bench_budget_s: float = 0.5
    tensorrt_shapes: TensorRTShapes = field(default_factory=TensorRTShapes)
    tolerance: tuple[float, float] = (1e-4, 1e-3)  # export check: atol, rtol
    build_tensorrt: bool = True


@dataclass
class VariantResult:
    kind: str
    path: Path | None = None
    verdict: gate.Verdict | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    served_as: str | None = None
    error: str | None = None
    size_bytes: int | None = None

    def as_dict(self) -> dict:
        if self.size_bytes is None and self.path and self.path.exists():
            self.size_bytes = self.path.stat().st_size
        return {
            "served_as": self.served_as,
            "size_bytes": self.size_bytes,
            "metrics": self.verdict.metrics if self.verdict else {},
            "passed": bool(self.verdict and self.verdict.passed and not self.error),
            "reasons": (self.verdict.reasons if self.verdict else [])
            + ([self.error] if self.error else []),
            "latency_ms": self.latency_ms,
        }


@dataclass
class Report:
    name: str
    results: dict[str, VariantResult]
    optimization: optimize.OptimizationReport
    int8_selected: str | None
    served: list[str]
    manifest: Path
    skipped: dict[str, str]
    export_max_deviation: float | None = None


def load_factory(reference: str) -> torch.nn.Module:
    """Import `package.module:function` and call it."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise SpecError(f"model '{reference}': expected package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SpecError(f"model '{reference}': cannot import {module_name} ({error})") from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise SpecError(f"model '{reference}': {module_name} has no callable '{attribute}'")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise SpecError(
            f"model '{reference}': the factory returned {type(model).__name__}, not an nn.Module"
        )
    return model.eval()


def output_dims(path: Path, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Triton dims of each output (batch axis dropped, symbolic axes -1) read from the graph."""
    graph = onnx.load(str(path), load_external_data=False).graph
    found = {}
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        found[output.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims[1:])
    missing = [n for n in names if n not in found]
    if missing:
        raise SpecError(f"the model has no output {missing}; its outputs are {sorted(found)}")
    return {n: found[n] for n in names}


def check_inputs(job: Job, path: Path) -> None:
    """The input spec must name the ONNX graph's inputs, and the datasets must fit it."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    graph_inputs = [i.name for i in graph.input if i.name not in initializers]
    if sorted(graph_inputs) != sorted(s.name for s in job.inputs):
        raise SpecError(
            f"input spec names {[s.name for s in job.inputs]}, the model's inputs are {graph_inputs}"
        )


def sample_inputs(job: Job, rows: int = 4) -> dict[str, np.ndarray]:
    batch = job.validation.batches[0]
    return {s.name: batch[s.name][:rows] for s in job.inputs}


def convert(job: Job, repository: Path, console=None, workdir: Path | None = None) -> Report:
    """Run every step; return the report (the manifest is written to the repository)."""
    own_tmp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=f"convert-{job.name}-")) if own_tmp else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with Steps(job.name, console) as steps:
            return _convert(job, repository, workdir, steps)
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)


def _convert(job: Job, repository: Path, workdir: Path, steps: Steps) -> Report:
    for dataset_name, dataset in (("calibration", job.calibration), ("validation", job.validation)):
        with steps.step(f"check {dataset_name} data", total=len(dataset.batches)) as advance:
            if not dataset.batches:
                raise SpecError(f"the {dataset_name} dataset is empty")
            for batch in dataset.batches:
                names = sorted(batch)
                if names != sorted(s.name for s in job.inputs):
                    raise SpecError(
                        f"{dataset_name} batch has inputs {names}, the spec says "
                        f"{sorted(s.name for s in job.inputs)}"
                    )
                for spec in job.inputs:
                    spec.check(batch[spec.name], f"{dataset_name} data")
                advance()

    exported = workdir / "exported.onnx"
    export_deviation = None
    if job.onnx_file is not None:
        with steps.step("load onnx") as advance:
            if not Path(job.onnx_file).exists():
                raise SpecError(f"{job.onnx_file} does not exist")
            onnx.checker.check_model(str(job.onnx_file), full_check=True)
            shutil.copyfile(job.onnx_file, exported)
            check_inputs(job, exported)
    else:
        with steps.step("load model") as advance:
            model = job.model if job.model is not None else load_factory(job.factory or "")
        sample = {k: torch.from_numpy(v) for k, v in sample_inputs(job).items()}
        with steps.step("export", total=2) as advance:
            with torch.no_grad():
                try:
                    model(*sample.values())
                except Exception as error:
                    raise SpecError(
                        f"the model does not accept the input spec "
                        f"{' '.join(s.name + ':' + s.dtype + ':' + ','.join(map(str, s.dims)) for s in job.inputs)}: "
                        f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                    ) from error
            axes = {s.name: s.dynamic_axes for s in job.inputs}
            axes.update({name: {0: "batch"} for name in job.output_names})
            export_onnx(model, sample, job.output_names, exported, dynamic_axes=axes)
            advance()
            check_inputs(job, exported)
            advance()
        with steps.step("compare with pytorch") as advance:
            atol, rtol = job.tolerance
            export_deviation = check_against_torch(model, exported, sample, atol=atol, rtol=rtol)
            advance(note=f"max |ort - torch| = {export_deviation:.2g}")
        del model

    with steps.step("optimize", total=2) as advance:
        base, fp32, opt_report = optimize.optimize(exported, workdir, job.transformer)
        advance(2, note=", ".join(f"{k}x{v}" for k, v in opt_report.fusions.items())[:80])
    dims = output_dims(fp32, job.output_names)

    results: dict[str, VariantResult] = {
        "fp32": VariantResult("fp32", fp32, size_bytes=fp32.stat().st_size)
    }
    builders: dict[str, Callable[[Path], Path]] = {
        "fp16": lambda t: variants.to_fp16(base, t),
        "int8_dynamic": lambda t: variants.int8_dynamic(base, t),
        "int8_static": lambda t: variants.int8_static(
            base,
            t,
            job.calibration.equal_shaped(job.calibration_batch_size),
            method=job.calibration_method,
            per_channel=job.static_per_channel,
            op_types=job.static_op_types,
            nodes_to_exclude=variants.first_and_last_layers(base)
            if job.static_keep_first_last
            else None,
        ),
    }
    for kind in job.variants:
        if kind not in builders:
            raise StepError("variants", f"unknown variant '{kind}' (choose from {list(builders)})")
        with steps.step(kind) as advance:
            result = VariantResult(kind)
            try:
                result.path = builders[kind](workdir / f"{kind}.onnx")
                result.size_bytes = result.path.stat().st_size
                gate.session(result.path)  # must load in ORT
            except Exception as error:
                result.error = (
                    f"could not be built or loaded: {type(error).__name__}: {str(error)[:200]}"
                )
                advance(note="[red]failed to build")
            results[kind] = result

    built = [k for k, r in results.items() if r.error is None]
    with steps.step("accuracy gate", total=len(built) * len(job.validation.batches)) as advance:
        reference = gate.run(fp32, job.validation, advance)
        for kind in built:
            outputs = (
                reference
                if kind == "fp32"
                else gate.run(results[kind].path, job.validation, advance)
            )
            values = gate.metrics(job.task, reference, outputs, job.validation.labels)
            results[kind].verdict = gate.judge(kind, job.task, values, job.gate)
        advance(
            0,
            note=" ".join(f"{k}:{'ok' if results[k].verdict.passed else 'REJECT'}" for k in built),
        )

    with steps.step("latency", total=len(built)) as advance:
        sample = sample_inputs(job, rows=len(next(iter(job.validation.batches[0].values()))))
        for kind in built:
            results[kind].latency_ms = latency.latency_ms(
                results[kind].path, sample, job.bench_batch_sizes, budget_s=job.bench_budget_s
            )
            advance()

    passing_int8 = [
        k for k in INT8_KINDS if k in results and results[k].verdict and results[k].verdict.passed
    ]
    selected = None
    if passing_int8:
        largest = str(max(job.bench_batch_sizes))
        selected = min(passing_int8, key=lambda k: results[k].latency_ms[largest])

    served: list[str] = []
    with steps.step("publish", total=3) as advance:
        opts = job.serving
        base_spec = ModelConfigSpec(
            name=job.name,
            inputs=tuple(Tensor(s.name, s.dtype, s.triton_dims) for s in job.inputs),
            outputs=tuple(Tensor(n, "float32", dims[n]) for n in job.output_names),
            max_batch_size=opts.max_batch_size,
            batching=Batching(
                opts.max_queue_delay_us, (), opts.queue_timeout_us, opts.max_queue_size
            ),
            instance_count=opts.instance_count,
            parameters={"intra_op_thread_count": str(opts.intra_op_threads)},
            graph_optimization_level=opts.graph_level,
            warmup_batch_sizes=opts.warmup_batch_sizes,
            warmup_dims={
                s.name: tuple(opts.dynamic_size if d == -1 else d for d in s.triton_dims)
                for s in job.inputs
            },
            valid_ranges=index_ranges(exported),
        )
        chosen = {"fp32": "fp32", "fp16": "fp16", "int8": selected}
        for served_kind, kind in chosen.items():
            suffix, precision = SERVED[served_kind]
            name = job.name + suffix
            result = results.get(kind) if kind else None
            if result is not None and result.error is None and result.verdict.passed:
                if kind == "int8_static":
                    precision = "INT8"  # explicit Q/DQ: TensorRT takes the scales from the graph
                publish(repository, _named(base_spec, name), result.path, gpu_precision=precision)
                result.served_as = name
                served.append(name)
            elif name != job.name:
                remove(repository, name)
            advance()
        for precision in ("fp16", "int8"):  # plans of an earlier export are stale now
            remove(repository, f"{job.name}_trt_{precision}")
        model_dir = repository / job.name
        # portable export + calibration batches: what `python -m conversion tensorrt` builds from
        shutil.copyfile(exported, model_dir / "portable.onnx")
        calib = job.calibration.equal_shaped(job.calibration_batch_size)
        np.savez(
            model_dir / "calibration.npz",
            **{f"{i}/{k}": v for i, b in enumerate(calib) for k, v in b.items()},
        )

    manifest = model_dir / "manifest.json"
    report = Report(
        job.name, results, opt_report, selected, served, manifest, steps.skipped, export_deviation
    )
    write_manifest(job, report)

    if job.build_tensorrt:
        from conversion import tensorrt

        reason = tensorrt.unavailable_reason()
        if reason:
            steps.skip("tensorrt", reason)
        else:
            with steps.step("tensorrt", total=2) as advance:
                tensorrt.build_for_model(repository, job.name, advance=advance)
        write_manifest(job, report, tensorrt_status=reason or "built")
    return report


def _named(spec: ModelConfigSpec, name: str) -> ModelConfigSpec:
    from dataclasses import replace

    return replace(spec, name=name)


def write_manifest(job: Job, report: Report, tensorrt_status: str | None = None) -> None:
    manifest = {
        "model": job.name,
        "source": str(job.onnx_file)
        if job.onnx_file
        else (job.factory or type(job.model).__name__),
        "task": job.task,
        "inputs": [{"name": s.name, "dtype": s.dtype, "dims": list(s.dims)} for s in job.inputs],
        "outputs": job.output_names,
        "gate": asdict(job.gate),
        "calibration": {
            "method": job.calibration_method,
            "samples": len(job.calibration),
            "static_per_channel": job.static_per_channel,
            "static_fp32_layers": "first and last" if job.static_keep_first_last else "none",
        },
        "validation_samples": len(job.validation),
        "export_max_deviation": report.export_max_deviation,
        "optimization": report.optimization.as_dict(),
        "variants": {k: r.as_dict() for k, r in report.results.items()},
        "int8_selected": report.int8_selected,
        "latency_setup": {
            "what": "median ms per batch in ONNX Runtime (CPU provider, ENABLE_ALL online, default threads)",
            "row_shape": {n: list(a.shape[1:]) for n, a in job.validation.batches[0].items()},
            "batch_sizes": list(job.bench_batch_sizes),
        },
        "served": report.served,
        "tensorrt": {
            "status": tensorrt_status or report.skipped.get("tensorrt", "not attempted yet"),
            "profile": {
                "batch": list(job.tensorrt_shapes.batch),
                **{k: list(v) for k, v in job.tensorrt_shapes.other.items()},
            },
        },
        "measured_on": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": __import__("os").cpu_count(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    report.manifest.write_text(json.dumps(manifest, indent=2) + "\n")

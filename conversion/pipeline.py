"""The conversion pipeline as steps: data -> export -> optimize -> variants -> gate -> latency ->
INT8 search -> publish -> TensorRT.

`convert(conversion, repository)` runs each step under its own progress bar (conversion.progress)
and returns a `Report`; a failing step raises StepError naming it. Each step is a function of a
typed input and output (`Exported`, `optimize.Optimized`, `VariantResult`, ...). Variants that
fail the accuracy gate, or that are slower than FP32 here, are built and reported but not served,
and a stale copy from an earlier run is removed. `<repo>/<name>/manifest.json` records all of it.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from rich.markup import escape

from conversion import gate, int8_search, latency, openvino_variants, optimize, variants
from conversion.binding import NamedModel, bind_inputs, bind_outputs, describe_forward
from conversion.export import (
    check_against_torch,
    export_onnx,
    prove_dynamic_axes,
    require_dynamic_batch,
)
from conversion.external_data import copy_onnx
from conversion.input_ranges import index_ranges, max_lengths
from conversion.openvino_parameters import WEIGHTS_FILE
from conversion.progress import StepError, Steps, describe
from conversion.repository import claim_names, publish, remove
from conversion.settings import Settings
from conversion.spec import (
    DEFAULT_TASK,
    DTYPES,
    TASKS,
    Dataset,
    InputSpec,
    OutputSpec,
    SpecError,
    shared_axes,
)
from conversion.text_serving import TextServing, write_text_models
from conversion.triton_config import Batching, ModelConfigSpec, Tensor

INT8_KINDS = ("int8_dynamic", "int8_static")
KINDS = ("fp16", *INT8_KINDS, *openvino_variants.OV_KINDS)
SEARCH_SAMPLE_ROWS = 16  # rows the INT8 search ranks layers on (the full gate decides)
# served name suffix and the ORT-TensorRT precision of its configs/gpu.pbtxt (OpenVINO: CPU only)
SERVED = {
    "fp32": ("", "FP16"),
    "fp16": ("_fp16", "FP16"),
    "int8": ("_int8", "FP16"),
    "ov_int8": ("_ov_int8", None),
    "ov_bf16": ("_ov_bf16", None),
}

Source = torch.nn.Module | str | Path  # a module, "package.module:factory", or an .onnx file


@dataclass
class Conversion:
    """Everything one conversion needs: what to convert, its data and its settings.

    `inputs`/`outputs` left empty are inferred: inputs from the validation arrays (or the ONNX
    graph), outputs from what `forward` returns (or the graph), each with `task`.
    `text`: serve a tokenizer in front of the model (`<name>_tokenizer`, `<served>_text`).
    """

    name: str
    source: Source
    calibration: Dataset
    validation: Dataset
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    task: str = DEFAULT_TASK
    settings: Settings = field(default_factory=Settings)
    text: TextServing | None = None

    def describe_source(self) -> str:
        """The source as the manifest names it: module class, factory reference or ONNX path."""
        if isinstance(self.source, torch.nn.Module):
            return type(self.source).__name__
        return str(self.source)


@dataclass
class Exported:
    """The exported graph, the tensors it serves, and what the export checks found."""

    path: Path
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    max_deviation: float | None = None  # ORT vs PyTorch on the sample rows
    tracer_warnings: list[str] = field(default_factory=list)
    axes_proven: dict[str, int] = field(default_factory=dict)  # dynamic axis -> second size run
    torch_outputs: gate.Outputs | None = None  # PyTorch over the validation set, by output


@dataclass
class VariantResult:
    """One built variant: its file, verdict, latency, and whether (and as what) it is served."""

    kind: str
    path: Path | None = None
    verdict: gate.Verdict | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    served_as: str | None = None
    error: str | None = None
    not_served: str | None = None  # why a variant that passed is not served
    size_bytes: int | None = None
    kept_fp32: tuple[str, ...] = ()
    inference_precision: str | None = None  # OpenVINO: what its float layers ran in (bf16, f32)

    @property
    def passed(self) -> bool:
        """Built, judged, and no output rejected."""
        return self.error is None and self.verdict is not None and self.verdict.passed

    def as_dict(self) -> dict:
        """The manifest entry of this variant (size in bytes, metrics per output, ms per batch)."""
        if self.size_bytes is None and self.path and self.path.exists():
            files = [self.path, openvino_variants.weights(self.path)]
            self.size_bytes = sum(f.stat().st_size for f in files if f.exists())
        return {
            "served_as": self.served_as,
            "runtime": "openvino" if self.kind in openvino_variants.OV_KINDS else "onnxruntime",
            "inference_precision": self.inference_precision,
            "size_bytes": self.size_bytes,
            "metrics": self.verdict.metrics if self.verdict else {},
            "judged_against": self.verdict.reference if self.verdict else None,
            "passed": self.passed,
            "reasons": (self.verdict.reasons if self.verdict else [])
            + ([self.error] if self.error else []),
            "not_served": self.not_served,
            "kept_fp32": list(self.kept_fp32),
            "latency_ms": self.latency_ms,
        }


@dataclass
class Report:
    """What a conversion did; `manifest` is the JSON file that records it."""

    name: str
    exported: Exported
    optimization: optimize.OptimizationReport
    results: dict[str, VariantResult]
    int8_selected: str | None
    served: list[str]
    manifest: Path
    skipped: dict[str, str]
    searches: list[int8_search.SearchResult] = field(default_factory=list)

    @property
    def export_max_deviation(self) -> float | None:
        """Max |ONNX Runtime - PyTorch| on the sample rows; None for an ONNX source."""
        return self.exported.max_deviation


def load_factory(reference: str) -> torch.nn.Module:
    """Import `package.module:function` and call it; SpecError says what is missing."""
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


def is_onnx_file(source: Source) -> bool:
    """True when the source is a path to an .onnx file (not a module or a factory)."""
    return isinstance(source, (str, Path)) and str(source).endswith(".onnx")


def resolve_inputs(conversion: Conversion) -> tuple[InputSpec, ...]:
    """The declared inputs, else the ONNX graph's, else inferred from a validation row."""
    if conversion.inputs:
        return conversion.inputs
    if is_onnx_file(conversion.source) and Path(conversion.source).exists():
        found = graph_inputs(Path(conversion.source))
        require_dynamic_batch(list(found), Path(conversion.source))
        return found
    return tuple(InputSpec.infer(n, a) for n, a in conversion.validation.head(1).items())


def check_data(conversion: Conversion, steps: Steps) -> tuple[InputSpec, ...]:
    """Steps 'check calibration data', 'check validation data': every batch of both datasets
    fits the input specs (declared or inferred), which are returned."""
    tasks = {o.task for o in conversion.outputs} or {conversion.task}
    if not tasks <= set(TASKS):
        raise SpecError(f"task {sorted(tasks - set(TASKS))} is not one of {list(TASKS)}")
    if "regression" in tasks and conversion.settings.gate.max_abs_deviation is None:
        raise SpecError("task 'regression' needs --max-deviation (the only gate it has)")
    if not conversion.validation.batches:
        raise SpecError("the validation dataset is empty")
    inputs = resolve_inputs(conversion)
    if not conversion.inputs:
        steps.console.print(f"{conversion.name}: inputs {' '.join(map(str, inputs))} (inferred)")
    want = sorted(s.name for s in inputs)
    datasets = (("calibration", conversion.calibration), ("validation", conversion.validation))
    for label, dataset in datasets:
        with steps.step(f"check {label} data", total=len(dataset.batches)) as advance:
            if not dataset.batches:
                raise SpecError(f"the {label} dataset is empty")
            for batch in dataset.batches:
                if sorted(batch) != want:
                    raise SpecError(
                        f"{label} batch has inputs {sorted(batch)}, the spec says {want}"
                    )
                for spec in inputs:
                    spec.check(batch[spec.name], f"{label} data")
                advance()
    return inputs


def bind(
    model: torch.nn.Module, inputs: tuple[InputSpec, ...], conversion: Conversion
) -> NamedModel:
    """Inputs by name to forward's parameters, outputs by key or checked position (or inferred)."""
    sample = conversion.validation.head(conversion.settings.export.sample_rows)
    names = [s.name for s in inputs]
    binding = bind_inputs(model, names)
    try:
        with torch.no_grad():
            result = binding.call(model, {n: torch.from_numpy(sample[n]) for n in names})
    except Exception as error:
        raise SpecError(
            f"{describe_forward(model)} does not accept the inputs "
            f"{' '.join(map(str, inputs))}: {describe(error)}"
        ) from error
    rows = len(sample[names[0]])
    return NamedModel(
        model, names, binding, bind_outputs(result, conversion.outputs, conversion.task, rows)
    )


def export_model(
    conversion: Conversion, inputs: tuple[InputSpec, ...], workdir: Path, steps: Steps
) -> Exported:
    """Steps 'load model', 'export', 'compare with pytorch', 'pytorch reference'."""
    with steps.step("load model"):
        source = conversion.source
        model = source if isinstance(source, torch.nn.Module) else load_factory(str(source))
    settings = conversion.settings.export
    sample = conversion.validation.head(settings.sample_rows)
    with steps.step("export", total=2) as advance:
        named = bind(model.eval(), inputs, conversion)
        if not conversion.outputs:
            shown = " ".join(map(str, named.outputs.outputs))
            steps.console.print(f"{conversion.name}: outputs {shown} (inferred)")
        advance()
        axes = {s.name: s.dynamic_axes for s in inputs}
        axes.update({name: {0: "batch"} for name in named.output_names})
        path = workdir / "exported.onnx"
        warned = export_onnx(named, sample, path, axes, settings.opset)
        for warning in warned:  # shown, not silenced: a frozen axis starts here
            steps.console.print(f"[yellow]{conversion.name}: TracerWarning[/] {escape(warning)}")
        advance()
    exported = Exported(path, inputs, named.outputs.outputs, tracer_warnings=warned)
    with steps.step("compare with pytorch", total=2) as advance:
        tolerance = (settings.atol, settings.rtol)
        exported.max_deviation = check_against_torch(named, path, sample, *tolerance)
        advance(note=f"max |ort - torch| = {exported.max_deviation:.2g}")
        exported.axes_proven = prove_dynamic_axes(
            named, path, list(inputs), sample, tolerance, warned
        )
        advance(note=", ".join(f"{a}={n} ok" for a, n in exported.axes_proven.items()))
    validation = conversion.validation
    with steps.step("pytorch reference", total=len(validation.batches)) as advance:
        exported.torch_outputs = gate.collect(named.run, validation, exported.outputs, advance)
    return exported


def graph_inputs(path: Path) -> tuple[InputSpec, ...]:
    """The ONNX graph's inputs as specs (symbolic axes keep their names, unnamed ones `axis<i>`)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    found = []
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else d.dim_param or f"axis{i}"
            for i, d in enumerate(tensor.shape.dim)
        )
        found.append(InputSpec(value.name, dtype if dtype in DTYPES else "float32", dims))
    return tuple(found)


def load_onnx(
    conversion: Conversion, inputs: tuple[InputSpec, ...], workdir: Path, steps: Steps
) -> Exported:
    """Step 'load onnx': check the file, its inputs against the spec, its outputs by name."""
    with steps.step("load onnx"):
        source = Path(conversion.source)
        if not source.exists():
            raise SpecError(f"{source} does not exist")
        path = copy_onnx(source, workdir / "exported.onnx")  # with its external data
        found = graph_inputs(path)
        if sorted(s.name for s in inputs) != sorted(s.name for s in found):
            raise SpecError(
                f"input spec names {[s.name for s in inputs]}, the model's inputs are "
                f"{[s.name for s in found]}"
            )
        graph_outputs = [
            o.name for o in onnx.load(str(path), load_external_data=False).graph.output
        ]
        outputs = conversion.outputs or tuple(OutputSpec(n, conversion.task) for n in graph_outputs)
        missing = [o.name for o in outputs if o.name not in graph_outputs]
        if missing:
            raise SpecError(f"the model has no output {missing}; its outputs are {graph_outputs}")
        require_dynamic_batch(list(found), source)
    return Exported(path, inputs, tuple(outputs))


def optimize_graph(
    exported: Exported, conversion: Conversion, workdir: Path, steps: Steps
) -> optimize.Optimized:
    """Step 'optimize': transformer fusion (if hinted) and ORT's EXTENDED level, offline."""
    with steps.step("optimize", total=2) as advance:
        optimized = optimize.optimize(exported.path, workdir, conversion.settings.transformer)
        fusions = optimized.report.fusions
        advance(2, note=", ".join(f"{k}x{v}" for k, v in fusions.items())[:80])
    if conversion.settings.transformer is not None and not fusions.get("Attention"):
        steps.console.print(
            f"[yellow]{conversion.name}: --transformer fused no Attention[/]: the ORT transformers "
            "optimizer fuses attention only in a model run with eager attention "
            '(attn_implementation="eager"); the FP32 model is served unfused'
        )
    return optimized


def keep_fp32(kind: str, source: Path, conversion: Conversion) -> tuple[str, ...]:
    """Nodes of `source` a variant keeps in FP32: the user's, first/last layers for static INT8,
    a transformer's MatMuls without weights for static INT8 (variants.activation_matmuls)."""
    q = conversion.settings.quantization
    static = kind == "int8_static"
    first_last = variants.first_and_last_layers(source) if static and q.keep_first_last else []
    transformer = static and conversion.settings.transformer is not None
    attention = variants.activation_matmuls(source) if transformer else []
    return tuple(dict.fromkeys([*q.keep_fp32, *first_last, *attention]))


def build_variant(
    kind: str, base: Path, target: Path, conversion: Conversion, keep: tuple[str, ...]
) -> Path:
    """Build one variant of `base` at `target` with the nodes `keep` in FP32 (FP16, INT8
    dynamic, INT8 static; OpenVINO variants are built from the export instead: `build_openvino`)."""
    q = conversion.settings.quantization
    if kind == "fp16":
        return variants.to_fp16(base, target, keep)
    if kind == "int8_dynamic":
        return variants.int8_dynamic(base, target, q.per_channel, keep)
    if kind == "int8_static":
        return variants.int8_static(
            base,
            target,
            conversion.calibration.equal_shaped(q.calibration_batch_size),
            method=q.calibration_method,
            per_channel=q.per_channel,
            op_types=variants.static_op_types(
                q.op_types, conversion.settings.transformer is not None
            ),
            keep_fp32=keep,
            cache=target.parent / "calibration_ranges.json",
        )
    raise SpecError(f"unknown variant '{kind}' (choose from {', '.join(KINDS)})")


def build_openvino(kind: str, exported: Path, workdir: Path, conversion: Conversion) -> Path:
    """`workdir/<kind>.xml` (+ .bin) from the unfused export (OpenVINO cannot read ORT's fused
    ops), INT8 calibrated on the conversion's calibration set (openvino_variants.build)."""
    size = conversion.settings.quantization.calibration_batch_size
    batches = conversion.calibration.equal_shaped(size) or conversion.calibration.batches
    return openvino_variants.build(kind, exported, workdir / f"{kind}.xml", batches)


def build_variants(
    optimized: optimize.Optimized,
    exported: Path,
    conversion: Conversion,
    workdir: Path,
    steps: Steps,
) -> dict[str, VariantResult]:
    """Steps 'fp16', 'int8_dynamic', 'int8_static', 'ov_int8', 'ov_bf16': a variant that fails
    to build is rejected with the node and what to try; the others go on."""
    (workdir / "calibration_ranges.json").unlink(missing_ok=True)  # ranges of an earlier model
    results = {"fp32": VariantResult("fp32", optimized.fp32)}
    for kind in conversion.settings.quantization.variants:
        if kind not in KINDS:
            raise StepError(
                "variants", f"unknown variant '{kind}' (choose from {', '.join(KINDS)})"
            )
        with steps.step(kind) as advance:
            openvino = kind in openvino_variants.OV_KINDS
            source = optimized.source(kind)
            kept = () if openvino else keep_fp32(kind, source, conversion)
            result = results[kind] = VariantResult(kind, kept_fp32=kept)
            try:
                if openvino:
                    result.path = build_openvino(kind, exported, workdir, conversion)
                else:
                    target = workdir / f"{kind}.onnx"
                    result.path = build_variant(kind, source, target, conversion, kept)
                loaded = gate.session(result.path)  # must load in ORT (OpenVINO for an IR)
                result.inference_precision = getattr(loaded, "inference_precision", None)
            except Exception as error:
                result.error = (
                    f"could not be built or loaded: {variants.explain_failure(error, kind, source)}"
                )
                advance(note="[red]failed to build")
    return results


def judge_all(
    results: dict[str, VariantResult], exported: Exported, conversion: Conversion, steps: Steps
) -> gate.Outputs:
    """Step 'accuracy gate': FP32 ONNX against PyTorch, every variant against FP32; returns the
    FP32 outputs. Raises SpecError when FP32 ONNX does not match PyTorch."""
    outputs, validation, settings = (
        exported.outputs,
        conversion.validation,
        conversion.settings.gate,
    )
    built = [k for k, r in results.items() if r.error is None]
    with steps.step("accuracy gate", total=len(built) * len(validation.batches)) as advance:
        fp32 = gate.run(results["fp32"].path, validation, outputs, advance)
        reference = exported.torch_outputs if exported.torch_outputs is not None else fp32
        gate.check_labels(outputs, reference, validation.labels)
        against = "pytorch" if exported.torch_outputs is not None else "fp32"
        values = gate.metrics(outputs, reference, fp32, validation.labels)
        baseline = gate.batch_dependence(results["fp32"].path, validation, outputs)
        for name, dependence in baseline.items():
            values[name]["batch_dependence"] = dependence
        verdict = results["fp32"].verdict = gate.judge("fp32", outputs, values, settings, against)
        if not verdict.passed:
            shown = "; ".join(f"{o}: {gate.headline(v)}" for o, v in values.items())
            raise SpecError(
                f"the FP32 ONNX model does not match PyTorch on the validation data "
                f"({'; '.join(verdict.reasons)}; {shown}): an output is swapped or mislabelled, "
                "or the export matched PyTorch on the sample rows only"
            )
        for kind in built[1:]:
            path = results[kind].path
            results[kind].verdict = judge_variant(
                kind, path, fp32, outputs, conversion, baseline, advance
            )
            note_bf16(results[kind], fp32, outputs, conversion)
        advance(0, note=" ".join(f"{k}:{'ok' if results[k].passed else 'REJECT'}" for k in built))
    return fp32


def judge_variant(
    kind: str,
    path: Path,
    fp32: gate.Outputs,
    outputs: tuple[OutputSpec, ...],
    conversion: Conversion,
    baseline: dict[str, float],
    progress=None,
) -> gate.Verdict:
    """The gate's verdict on the variant at `path` against the FP32 outputs over the validation
    set, its measured batch dependence included (`baseline`: FP32's own, by output)."""
    validation = conversion.validation
    values = gate.metrics(
        outputs, fp32, gate.run(path, validation, outputs, progress), validation.labels
    )
    for name, dependence in gate.batch_dependence(path, validation, outputs).items():
        values[name]["batch_dependence"] = dependence
    return gate.judge(kind, outputs, values, conversion.settings.gate, baseline=baseline)


def note_bf16(
    result: VariantResult,
    fp32: gate.Outputs,
    outputs: tuple[OutputSpec, ...],
    conversion: Conversion,
) -> None:
    """Add the reason BF16 caused a quality refusal to `result`'s verdict, measured: an OpenVINO
    variant whose float layers ran in BF16 (`openvino_variants.bf16_may_be_at_fault`) and that
    was refused on quality, not batch dependence, is run again in FP32 over the validation set;
    the note is added only when it passes there."""
    verdict = result.verdict
    if verdict is None or verdict.passed or verdict.batch_dependent or result.path is None:
        return
    if not openvino_variants.bf16_may_be_at_fault(result.kind, result.inference_precision):
        return
    candidate = gate.run(result.path, conversion.validation, outputs, precision="f32")
    values = gate.metrics(outputs, fp32, candidate, conversion.validation.labels)
    if gate.judge(result.kind, outputs, values, conversion.settings.gate).passed:
        shown = "; ".join(f"{name}: {gate.headline(v)}" for name, v in values.items())
        verdict.reasons.append(openvino_variants.precision_note(shown))


def time_variants(
    results: dict[str, VariantResult], conversion: Conversion, steps: Steps, label: str = "latency"
) -> None:
    """Step 'latency': ms per batch size of every built variant in ONNX Runtime here, timed in
    turns in one table (latency.latency_table), so their ratios to FP32 come from one run."""
    settings = conversion.settings.latency
    paths = {k: r.path for k, r in results.items() if r.error is None and r.path is not None}
    with steps.step(label, total=1) as advance:
        sample = conversion.validation.batches[0]
        table = latency.latency_table(
            paths, sample, settings.batch_sizes, budget_s=settings.budget_s
        )
        for kind, values in table.items():
            results[kind].latency_ms = values
        advance()


def search_one(
    kind: str,
    fp32: gate.Outputs,
    optimized: optimize.Optimized,
    exported: Exported,
    conversion: Conversion,
    workdir: Path,
    kept: tuple[str, ...],
    baseline: dict[str, float],
    budget_s: float,
    advance,
) -> int8_search.SearchResult:
    """int8_search.search for one INT8 kind over its layers (variants.layers): distance on the
    first SEARCH_SAMPLE_ROWS validation rows, the full gate (judge_variant, `baseline`: FP32's
    batch dependence) on the whole validation set."""
    outputs, validation = exported.outputs, conversion.validation
    sample = Dataset([{n: a[:SEARCH_SAMPLE_ROWS] for n, a in validation.batches[0].items()}])
    sample_fp32 = gate.run(optimized.fp32, sample, outputs)
    source = optimized.source(kind)
    members = {k: v for k, v in variants.layers(source, kind).items() if k not in kept}
    trial = iter(range(1_000_000))

    def build(keep: tuple[str, ...]) -> Path:
        nodes = tuple(n for layer in keep for n in members[layer])
        target = workdir / f"{kind}_search_{next(trial)}.onnx"
        return build_variant(kind, source, target, conversion, tuple(dict.fromkeys(kept + nodes)))

    def judge(path: Path) -> gate.Verdict:
        return judge_variant(kind, path, fp32, outputs, conversion, baseline)

    return int8_search.search(
        kind,
        list(members),
        build,
        distance=lambda path: gate.distance(gate.run(path, sample, outputs), sample_fp32),
        judge=judge,
        budget_s=budget_s,
        progress=lambda note: advance(0, note=note),
    )


def search_int8(
    results: dict[str, VariantResult],
    fp32: gate.Outputs,
    optimized: optimize.Optimized,
    exported: Exported,
    conversion: Conversion,
    workdir: Path,
    steps: Steps,
) -> list[int8_search.SearchResult]:
    """Step '<kind> search': for each INT8 kind that failed the gate but is faster than FP32
    (or with serve_slower), the fewest nodes to keep in FP32 for it to pass, within the budget; a passing model joins
    the results as `<kind>_mixed`."""
    budget = conversion.settings.quantization.search_budget_s
    failed = [k for k in INT8_KINDS if k in results and results[k].error is None]
    failed = [k for k in failed if not results[k].passed]
    settings = conversion.settings.latency
    searched = []
    for kind in failed if budget > 0 else []:
        fp32_ms, kind_ms = results["fp32"].latency_ms, results[kind].latency_ms
        slow = latency.too_slow(kind, fp32_ms, kind_ms, settings.noise_margin)
        if results[kind].verdict.batch_dependent:
            steps.skip(f"{kind} search", "its answers depend on batch-mates; FP32 layers keep that")
        elif slow and not settings.serve_slower:  # FP32 nodes would make it slower still
            steps.skip(f"{kind} search", f"fully quantized it is already {slow}")
        else:
            searched.append(kind)
    fp32_metrics = results["fp32"].verdict.metrics
    baseline = {name: values["batch_dependence"] for name, values in fp32_metrics.items()}
    found = []
    for kind in searched:
        kept = results[kind].kept_fp32
        with steps.step(f"{kind} search") as advance:
            args = (fp32, optimized, exported, conversion, workdir, kept, baseline)
            result = search_one(kind, *args, budget / len(searched), advance)
            verdict = "pass" if result.path else "none passed"
            advance(note=f"{len(result.kept_fp32)} layer(s) kept FP32: {verdict}")
        found.append(result)
        if result.path is not None:
            mixed = f"{kind}_mixed"
            kept_all = kept + result.kept_fp32
            results[mixed] = VariantResult(mixed, result.path, result.verdict, kept_fp32=kept_all)
    return found


def choose(results: dict[str, VariantResult], conversion: Conversion) -> dict[str, str | None]:
    """{served kind (fp32, fp16, int8, ov_int8, ov_bf16): the variant served as it, or None};
    fills `not_served`.

    INT8 (ONNX Runtime): the fastest passing kind at the largest batch size. OpenVINO variants
    are served under their own names. A variant slower than FP32 here (latency.too_slow) is not
    served unless settings.latency.serve_slower.
    """
    settings = conversion.settings.latency
    largest = str(max(settings.batch_sizes))
    fp32 = results["fp32"].latency_ms
    for kind, result in results.items():
        if kind != "fp32" and result.passed:
            why = latency.too_slow(kind, fp32, result.latency_ms, settings.noise_margin)
            result.not_served = None if settings.serve_slower else why
    servable = [k for k, r in results.items() if r.passed and r.not_served is None]
    int8 = [k for k in servable if k.startswith("int8")]
    selected = min(int8, key=lambda k: results[k].latency_ms[largest]) if int8 else None
    for kind in int8:
        if kind != selected:
            results[kind].not_served = f"{selected} is faster at batch {largest}"
    chosen = {"fp32": "fp32", "fp16": "fp16" if "fp16" in servable else None, "int8": selected}
    return chosen | {k: k if k in servable else None for k in openvino_variants.OV_KINDS}


def model_config(conversion: Conversion, exported: Exported, fp32: Path) -> ModelConfigSpec:
    """The served config of the FP32 model (variants get their name and precision from it).

    Inputs as exported; outputs with the dims and dtypes of the optimized graph. The config is
    derived from the exported graph (`exported.path`), which also tells which inputs index
    embedding tables.
    """
    opts = conversion.settings.serving
    graph = onnx.load(str(fp32), load_external_data=False).graph
    found = {o.name: o.type.tensor_type for o in graph.output}
    outputs = tuple(
        Tensor.batched(
            o.name,
            onnx.helper.tensor_dtype_to_np_dtype(found[o.name].elem_type).name,
            tuple(
                d.dim_value if d.HasField("dim_value") else -1 for d in found[o.name].shape.dim[1:]
            ),
        )
        for o in exported.outputs
    )
    return ModelConfigSpec(
        name=conversion.name,
        inputs=tuple(Tensor.batched(s.name, s.dtype, s.triton_dims) for s in exported.inputs),
        outputs=outputs,
        max_batch_size=opts.max_batch_size,
        batching=Batching(opts.max_queue_delay_us, (), opts.queue_timeout_us, opts.max_queue_size),
        instance_count=opts.instance_count,
        parameters={"intra_op_thread_count": str(opts.intra_op_threads)},
        graph_optimization_level=opts.graph_level,
        warmup_batch_sizes=opts.warmup_batch_sizes,
        warmup_dims={
            s.name: tuple(opts.dynamic_size if d == -1 else d for d in s.triton_dims) or (1,)
            for s in exported.inputs
        },
        # read from the unoptimized export: the optimized graph has fused the lookups away
        valid_ranges=index_ranges(exported.path),
        max_lengths=max_lengths(exported.path, {s.name: s.dynamic_axes for s in exported.inputs}),
        shared_axes=shared_axes(exported.inputs),
    )


def written_names(name: str) -> list[str]:
    """Every model name converting `name` may write or remove: its served variants (SERVED),
    their text ensembles, its tokenizer and its TensorRT plans."""
    served = [name + suffix for suffix, _ in SERVED.values()]
    plans = [f"{name}_trt_{precision}" for precision in ("fp16", "int8")]
    return [*served, *(f"{s}_text" for s in served), f"{name}_tokenizer", *plans]


def openvino_spec(spec: ModelConfigSpec, ir: Path, conversion: Conversion) -> ModelConfigSpec:
    """The served config of an OpenVINO variant: Triton's OpenVINO backend (`backend:
    "openvino"`, `model.xml` + `model.bin`) with its documented parameters
    (conversion.openvino_parameters): PERFORMANCE_HINT LATENCY and one stream per instance
    with `intra_op_threads` threads, as the ONNX Runtime configs run, plus what the IR stores
    (HINT_BF16). ORT's `intra_op_thread_count` and graph level do not apply."""
    threads = conversion.settings.serving.intra_op_threads
    parameters = {k: v for k, v in spec.parameters.items() if k != "intra_op_thread_count"}
    parameters |= {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
    if threads:
        parameters["INFERENCE_NUM_THREADS"] = str(threads)
    parameters |= openvino_variants.parameters(ir)
    return replace(
        spec, platform="", backend="openvino", parameters=parameters, graph_optimization_level=None
    )


def keep_for_tensorrt(repository: Path, exported: Exported, conversion: Conversion) -> None:
    """`<model>/portable.onnx` and `calibration.npz`: what `python -m conversion tensorrt` builds
    plans from; plans of an earlier export are removed (stale now)."""
    for precision in ("fp16", "int8"):
        remove(repository, f"{conversion.name}_trt_{precision}")
    model_dir = repository / conversion.name
    copy_onnx(exported.path, model_dir / "portable.onnx")  # with its weights
    size = conversion.settings.quantization.calibration_batch_size
    batches = conversion.calibration.equal_shaped(size)
    arrays = {f"{i}/{name}": array for i, b in enumerate(batches) for name, array in b.items()}
    np.savez(model_dir / "calibration.npz", **arrays)


def publish_all(
    chosen: dict[str, str | None],
    results: dict[str, VariantResult],
    exported: Exported,
    conversion: Conversion,
    repository: Path,
    steps: Steps,
) -> list[str]:
    """Step 'publish': chosen variants -> Triton models (and text ensembles); the others are
    removed; returns the served names."""
    served: list[str] = []
    with steps.step("publish", total=len(chosen) + 1) as advance:
        spec = model_config(conversion, exported, results["fp32"].path)
        for served_kind, kind in chosen.items():
            suffix, precision = SERVED[served_kind]
            name = conversion.name + suffix
            if kind is None:
                remove(repository, name)
                remove(repository, f"{name}_text")
            else:
                if kind.startswith("int8_static"):
                    precision = "INT8"  # explicit Q/DQ: TensorRT takes the scales from the graph
                path, extra = results[kind].path, None
                served_spec = replace(spec, name=name)
                if kind in openvino_variants.OV_KINDS:
                    served_spec = openvino_spec(served_spec, path, conversion)
                    extra = {WEIGHTS_FILE: openvino_variants.weights(path)}
                publish(repository, served_spec, path, gpu_precision=precision, extra_files=extra)
                results[kind].served_as = name
                served.append(name)
            advance()
        keep_for_tensorrt(repository, exported, conversion)
        if conversion.text is not None:
            served += write_text_models(repository, conversion.name, list(served), conversion.text)
        advance()
    return served


def build_tensorrt(repository: Path, name: str, steps: Steps) -> str:
    """Step 'tensorrt': plans where TensorRT and a CUDA GPU exist; else skipped with the reason."""
    from conversion import tensorrt

    reason = tensorrt.unavailable_reason()
    if reason:
        steps.skip("tensorrt", reason)
        return reason
    with steps.step("tensorrt", total=2) as advance:
        tensorrt.build_for_model(repository, name, advance=advance)
    return "built"


def convert(
    conversion: Conversion, repository: Path, console=None, workdir: Path | None = None
) -> Report:
    """Run every step; return the report (the manifest is written to the repository).

    Raises repository.ModelNameError first when the name is unsafe or another model serves one
    of the names this conversion would write (`written_names`).
    """
    from conversion.manifest import write_manifest

    claim_names(repository, conversion.name, written_names(conversion.name))
    own_tmp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=f"convert-{conversion.name}-")) if own_tmp else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with Steps(conversion.name, console) as steps:
            inputs = check_data(conversion, steps)
            export = load_onnx if is_onnx_file(conversion.source) else export_model
            exported = export(conversion, inputs, workdir, steps)
            optimized = optimize_graph(exported, conversion, workdir, steps)
            results = build_variants(optimized, exported.path, conversion, workdir, steps)
            fp32 = judge_all(results, exported, conversion, steps)
            time_variants(results, conversion, steps)
            searches = search_int8(results, fp32, optimized, exported, conversion, workdir, steps)
            if any(s.path for s in searches):  # one table again, the mixed models with the rest
                time_variants(results, conversion, steps, "latency with the search's models")
            chosen = choose(results, conversion)
            served = publish_all(chosen, results, exported, conversion, repository, steps)
            manifest = repository / conversion.name / "manifest.json"
            report = Report(
                conversion.name,
                exported,
                optimized.report,
                results,
                chosen["int8"],
                served,
                manifest,
                steps.skipped,
                searches,
            )
            write_manifest(conversion, report, "not attempted yet")
            write_manifest(conversion, report, build_tensorrt(repository, conversion.name, steps))
            return report
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)

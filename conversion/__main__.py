"""`python -m conversion`: PyTorch/ONNX -> optimized, FP16, INT8 (and TensorRT) -> Triton repository."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from conversion.progress import StepError
from conversion.settings import (
    CALIBRATION_METHODS,
    GateSettings,
    LatencySettings,
    QuantizationSettings,
    ServingOptions,
    Settings,
    TransformerHint,
)
from conversion.spec import BATCH_SIZE, DEFAULT_TASK, Dataset, InputSpec, OutputSpec, SpecError

if TYPE_CHECKING:
    from conversion.pipeline import Conversion

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
err = Console(stderr=True)


def _fail(error: Exception) -> None:
    err.print(f"[red bold]conversion failed[/]: {escape(str(error))}")
    raise typer.Exit(code=1)


@app.command()
def demo(
    repository: Path = typer.Option(Path("model_repository"), help="Model repository to write."),
    force: bool = typer.Option(False, help="Rebuild models that are already present."),
) -> None:
    """Build the demo models (digits, MiniLM + text ensembles) that are missing from the repository."""
    from conversion.demo import build_missing

    try:
        build_missing(repository, force=force)
    except (StepError, SpecError) as error:
        _fail(error)


def _static_op_types() -> set[str]:
    from conversion.variants import quantized_op_types

    return quantized_op_types("int8_static")


def _settings(
    variants: str,
    calibration_method: str,
    batch_size: int,
    keep_first_last: bool,
    keep_fp32: list[str],
    op_types: str,
    search_budget: float,
    gate: GateSettings,
    serve_slower: bool,
    max_batch_size: int,
) -> Settings:
    if calibration_method not in CALIBRATION_METHODS:
        raise SpecError(
            f"--calibration-method '{calibration_method}': one of {CALIBRATION_METHODS}"
        )
    chosen = tuple(t.strip() for t in op_types.split(",") if t.strip())
    known = _static_op_types() if chosen else set()
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise SpecError(
            f"--op-types {', '.join(unknown)}: not an op type static INT8 quantizes "
            f"(onnxruntime's QDQ registry: {', '.join(sorted(known))})"
        )
    return Settings(
        quantization=QuantizationSettings(
            variants=tuple(v for v in variants.split(",") if v),
            calibration_method=calibration_method,
            calibration_batch_size=batch_size,
            keep_first_last=keep_first_last,
            keep_fp32=tuple(keep_fp32),
            op_types=chosen or None,
            search_budget_s=search_budget,
        ),
        gate=gate,
        latency=LatencySettings(serve_slower=serve_slower),
        serving=ServingOptions(max_batch_size=max_batch_size),
    )


def _conversion(
    model: str,
    name: str,
    inputs: list[str],
    outputs: list[str],
    calibration: Path,
    validation: Path,
    task: str | None,
    batch_size: int,
    transformer: str | None,
    settings: Settings,
) -> Conversion:
    """The Conversion the arguments describe; SpecError/ValueError name a wrong argument."""
    from conversion.pipeline import Conversion

    if model.startswith("hf:"):
        if inputs or outputs:
            raise SpecError(
                "an hf: model has its own inputs and outputs: leave out --input/--output"
            )
        from conversion import huggingface

        folder = Path(model.removeprefix("hf:"))
        data = (calibration, validation, batch_size)
        return huggingface.conversion(name, folder, *data, transformer, settings)
    if transformer == "auto":
        raise SpecError(
            "--transformer auto reads an hf: model's config; give model_type,heads,hidden"
        )
    task = task or DEFAULT_TASK
    hint = TransformerHint.parse(transformer) if transformer else None
    return Conversion(
        name=name,
        source=Path(model) if model.endswith(".onnx") else model,
        inputs=tuple(InputSpec.parse(text) for text in inputs),
        outputs=tuple(OutputSpec.parse(text, task) for text in outputs),
        task=task,
        calibration=Dataset.load_npz(calibration, batch_size),
        validation=Dataset.load_npz(validation, batch_size),
        settings=replace(settings, transformer=hint),
    )


Q, G = QuantizationSettings, GateSettings  # the defaults below are theirs


@app.command()
def convert(
    model: str = typer.Option(
        ..., help="package.module:factory returning an nn.Module, a .onnx file, or hf:FOLDER."
    ),
    name: str = typer.Option(..., help="Served model name (variants get _fp16, _int8 suffixes)."),
    input: list[str] = typer.Option(
        [],
        "--input",
        help="name:dtype:dims, e.g. image:float32:batch,1,8,8 (repeat per input; default: "
        "forward's parameters named by the data, or the ONNX graph's inputs).",
    ),
    output: list[str] = typer.Option(
        [],
        "--output",
        help="name[:task][:dims], e.g. logits or score:regression:batch,1 (repeat per output; "
        "default: what forward returns). Tuple outputs bind by position: give their dims.",
    ),
    calibration: Path = typer.Option(
        ..., help=".npz with one array per input; hf: a text file or an image folder."
    ),
    validation: Path = typer.Option(
        ..., help="Held-out data as --calibration, plus `labels` (npz) for classification."
    ),
    task: str = typer.Option(
        None, help="classification | embedding | regression: of outputs without a task."
    ),
    repository: Path = typer.Option(Path("model_repository"), help="Model repository to write."),
    variants: str = typer.Option(",".join(Q.variants), help="Comma-separated variants."),
    calibration_method: str = typer.Option(
        Q.calibration_method, help="minmax | entropy | percentile"
    ),
    keep_first_last: bool = typer.Option(
        Q.keep_first_last, help="Static INT8: keep the first and last compute layers in FP32."
    ),
    keep_fp32: list[str] = typer.Option(
        [], "--keep-fp32", help="A node to keep in FP32 in FP16/INT8 variants (repeat)."
    ),
    op_types: str = typer.Option(
        "",
        help="Static INT8: comma-separated ONNX op types to quantize, e.g. MatMul,Gemm (default: "
        "a transformer's weight layers with --transformer, else every type the quantizer knows).",
    ),
    int8_search_budget: float = typer.Option(
        Q.search_budget_s,
        help="Seconds to search for the fewest FP32 nodes that make a failing INT8 pass (0: off).",
    ),
    max_accuracy_drop: float = typer.Option(
        G.max_accuracy_drop, help="Gate: classification accuracy drop (0.01 = 1 point)."
    ),
    min_cosine: float = typer.Option(G.min_mean_cosine, help="Gate: mean cosine for embeddings."),
    max_deviation: float = typer.Option(None, help="Gate: optional max |variant - fp32|."),
    transformer: str = typer.Option(
        None,
        help="model_type,num_heads,hidden_size for the ORT transformers optimizer, e.g. "
        "bert,12,384; `auto` for an hf: model (loaded with eager attention).",
    ),
    serve_slower: bool = typer.Option(
        LatencySettings.serve_slower, help="Serve variants slower than FP32 on this machine too."
    ),
    max_batch_size: int = typer.Option(
        ServingOptions.max_batch_size, help="config.pbtxt max_batch_size."
    ),
    batch_size: int = typer.Option(BATCH_SIZE, help="Batch size for calibration and validation."),
) -> None:
    """Convert a user model: export, optimize, FP16/INT8 variants, accuracy gate, publish."""
    from conversion.demo import console
    from conversion.pipeline import convert as run
    from conversion.summary import print_report

    gate = GateSettings(max_accuracy_drop, min_cosine, G.min_ranking_agreement, max_deviation)
    try:  # arguments and datasets first: a wrong spec is named before any work starts
        settings = _settings(
            variants,
            calibration_method,
            batch_size,
            keep_first_last,
            keep_fp32,
            op_types,
            int8_search_budget,
            gate,
            serve_slower,
            max_batch_size,
        )
        job = _conversion(
            model,
            name,
            input,
            output,
            calibration,
            validation,
            task,
            batch_size,
            transformer,
            settings,
        )
    except (SpecError, ValueError) as error:
        _fail(StepError("read arguments", str(error)))
    if job.validation.labels is None and "classification" in {o.task for o in job.outputs} | {
        job.task
    }:
        err.print("[yellow]validation set has no `labels`: the gate uses top-1 agreement with FP32")
    try:
        report = run(job, repository, console)
    except (StepError, SpecError) as error:
        _fail(error)
    print_report(report, console)


@app.command()
def tensorrt(
    repository: Path = typer.Option(
        Path("model_repository"), help="Repository whose converted models get plans."
    ),
) -> None:
    """Build TensorRT FP16/INT8 plans for the ONNX models already in a repository (GPU host)."""
    from conversion.tensorrt import build_repository

    try:
        results = build_repository(repository)
    except Exception as error:
        _fail(StepError("tensorrt", f"{type(error).__name__}: {error}"))
    if not results:
        err.print(f"no converted model (with a manifest.json) in {repository}")
    for name, outcome in results.items():
        if isinstance(outcome, str):
            err.print(f"[yellow]{name}: TensorRT skipped[/]: {escape(outcome)}")
        else:
            err.print(f"{name}: built {', '.join(outcome)}")


@app.command()
def bench(
    repository: Path = typer.Option(
        Path("model_repository"), help="Repository with the demo models (built if missing)."
    ),
    quick: bool = typer.Option(False, help="Shorter timing runs."),
) -> None:
    """Throughput at batch 32: MiniLM INT8 vs eager PyTorch FP32, digits INT8 vs ORT FP32."""
    from conversion.claims import run_benchmark

    run_benchmark(repository, quick=quick)


@app.command()
def profile(
    model: str = typer.Option("digits", help="A demo model name (digits, minilm) or a .onnx file."),
    repository: Path = typer.Option(
        Path("model_repository"), help="Repository with the demo models."
    ),
    batch_size: int = typer.Option(32, help="Batch size to profile."),
    top: int = typer.Option(12, help="How many operators to list."),
) -> None:
    """PyTorch profiler and ORT profiling: the top operators and where the time goes."""
    from conversion.profiling import run_profile

    try:
        run_profile(model, repository, batch_size, top)
    except (StepError, SpecError) as error:
        _fail(error)


@app.callback()
def main() -> None:
    """Convert models and write them into a Triton model repository."""


if __name__ == "__main__":
    app()

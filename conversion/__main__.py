"""`python -m conversion`: PyTorch/ONNX -> optimized, FP16, INT8 (and TensorRT) -> Triton repository."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from conversion.progress import StepError
from conversion.spec import SpecError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
err = Console(stderr=True)


def _fail(error: Exception) -> None:
    err.print(f"[red bold]conversion failed[/]: {error}")
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


@app.command()
def convert(
    model: str = typer.Option(
        ..., help="package.module:factory returning an nn.Module, or a .onnx file."
    ),
    name: str = typer.Option(..., help="Served model name (variants get _fp16, _int8 suffixes)."),
    input: list[str] = typer.Option(
        ..., "--input", help="name:dtype:dims, e.g. image:float32:batch,1,8,8 (repeat per input)."
    ),
    output: list[str] = typer.Option(..., "--output", help="Output name (repeat per output)."),
    calibration: Path = typer.Option(..., help=".npz with one array per input (calibration set)."),
    validation: Path = typer.Option(
        ..., help=".npz with one array per input, plus `labels` for classification (held out)."
    ),
    task: str = typer.Option("classification", help="classification | embedding | regression"),
    repository: Path = typer.Option(Path("model_repository"), help="Model repository to write."),
    variants: str = typer.Option("fp16,int8_dynamic,int8_static", help="Comma-separated variants."),
    calibration_method: str = typer.Option("minmax", help="minmax | entropy | percentile"),
    keep_first_last: bool = typer.Option(
        False, help="Static INT8: keep the first and last compute layers in FP32."
    ),
    max_accuracy_drop: float = typer.Option(
        0.01, help="Gate: classification accuracy drop (0.01 = 1 point)."
    ),
    min_cosine: float = typer.Option(0.99, help="Gate: mean cosine for embeddings."),
    max_deviation: float = typer.Option(None, help="Gate: optional max |variant - fp32|."),
    transformer: str = typer.Option(
        None,
        help="model_type,num_heads,hidden_size for the ORT transformers optimizer, e.g. bert,12,384.",
    ),
    max_batch_size: int = typer.Option(64, help="config.pbtxt max_batch_size."),
    batch_size: int = typer.Option(32, help="Batch size for calibration and validation."),
) -> None:
    """Convert a user model: export, optimize, FP16/INT8 variants, accuracy gate, publish."""
    from conversion.demo import console
    from conversion.pipeline import Job
    from conversion.pipeline import convert as run
    from conversion.spec import TASKS, Dataset, Gate, InputSpec, ServingOptions, TransformerHint
    from conversion.summary import print_report

    try:  # arguments and datasets first: a wrong spec is named before any work starts
        if task not in TASKS:
            raise SpecError(f"task '{task}' is not one of {list(TASKS)}")
        if task == "regression" and max_deviation is None:
            raise SpecError("task 'regression' needs --max-deviation (the only gate it has)")
        specs = [InputSpec.parse(text) for text in input]
        hint = None
        if transformer:
            try:
                kind, heads, hidden = transformer.split(",")
                hint = TransformerHint(kind, int(heads), int(hidden))
            except ValueError:
                raise SpecError(
                    f"--transformer '{transformer}': expected model_type,num_heads,hidden_size"
                ) from None
        is_onnx = model.endswith(".onnx")
        job = Job(
            name=name,
            inputs=specs,
            output_names=list(output),
            calibration=Dataset.load_npz(calibration, specs, batch_size),
            validation=Dataset.load_npz(validation, specs, batch_size),
            task=task,
            factory=None if is_onnx else model,
            onnx_file=Path(model) if is_onnx else None,
            gate=Gate(
                max_accuracy_drop=max_accuracy_drop,
                min_mean_cosine=min_cosine,
                max_abs_deviation=max_deviation,
            ),
            transformer=hint,
            variants=tuple(v for v in variants.split(",") if v),
            calibration_method=calibration_method,
            calibration_batch_size=batch_size,
            static_keep_first_last=keep_first_last,
            serving=ServingOptions(max_batch_size=max_batch_size),
        )
    except (SpecError, ValueError) as error:
        _fail(StepError("read arguments", str(error)))
    if task == "classification" and job.validation.labels is None:
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
            err.print(f"[yellow]{name}: TensorRT skipped[/]: {outcome}")
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

"""The demo models, built offline: the digits CNN and MiniLM sentence embeddings (text in).

`build_missing(repository)` builds each demo model whose config is absent. Full-size runs
(`make convert`) validate on the whole held-out split; tests pass a smaller `Sizes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from conversion import digits, minilm
from conversion.pipeline import Conversion, Report, convert
from conversion.settings import (
    GateSettings,
    LatencySettings,
    QuantizationSettings,
    Settings,
    TensorRTShapes,
    TransformerHint,
)
from conversion.spec import Dataset, InputSpec, OutputSpec
from conversion.text_serving import TextServing

console = Console(stderr=True)


@dataclass(frozen=True)
class Sizes:
    """How much data each demo uses: `make convert` takes the defaults, tests smaller ones."""

    digits_validation: int = 0  # 0 = the whole held-out split (540 images)
    digits_calibration: int = 256
    minilm_validation: int = 384
    minilm_calibration: int = 64
    bench_budget_s: float = LatencySettings.budget_s


FULL = Sizes()


def digits_conversion(sizes: Sizes = FULL, seed: int = 0) -> Conversion:
    """The digits CNN, trained here (seeded), calibrated on training images, gated on the
    held-out split with labels (accuracy drop <= 0.5 point)."""
    data = digits.load_data(seed)
    with console.status("digits: training the CNN on sklearn load_digits"):
        torch.manual_seed(seed)
        model = digits.train(data, seed=seed)
    count = sizes.digits_validation or len(data.test_x)
    return Conversion(
        name="digits",
        source=model,
        inputs=(InputSpec(digits.INPUT_NAME, "float32", ("batch", *digits.IMAGE_SHAPE)),),
        outputs=(OutputSpec(digits.OUTPUT_NAME, "classification", ("batch", digits.NUM_CLASSES)),),
        # calibration from the training split; the gate decides on the held-out test split
        calibration=Dataset.from_arrays(
            {digits.INPUT_NAME: data.train_x[: sizes.digits_calibration]}, 32
        ),
        validation=Dataset.from_arrays(
            {digits.INPUT_NAME: data.test_x[:count]}, 64, data.test_y[:count]
        ),
        settings=Settings(
            quantization=QuantizationSettings(calibration_batch_size=32, keep_first_last=True),
            gate=GateSettings(max_accuracy_drop=0.005),
            latency=LatencySettings(budget_s=sizes.bench_budget_s),
            tensorrt=TensorRTShapes(batch=(1, 16, 64), other={}),
        ),
    )


def minilm_datasets(sizes: Sizes = FULL) -> tuple[Dataset, Dataset]:
    """Calibration: sentences padded to 64 tokens (one shape); validation: sorted by length,
    batches of 32 padded to their bucket, as served."""
    tokenizer = minilm.load_tokenizer()
    calib = minilm.calibration_sentences(sizes.minilm_calibration)
    calibration = Dataset([minilm.tokenize(tokenizer, calib, length=64)])
    valid = minilm.validation_sentences(sizes.minilm_validation)
    valid = sorted(valid, key=lambda s: len(tokenizer.encode(s).ids))
    batches = [minilm.tokenize(tokenizer, valid[i : i + 32]) for i in range(0, len(valid), 32)]
    return calibration, Dataset(batches)


def minilm_conversion(sizes: Sizes = FULL) -> Conversion:
    """MiniLM sentence embeddings (eager attention, fused), served with its tokenizer."""
    calibration, validation = minilm_datasets(sizes)
    return Conversion(
        name="minilm",
        source=minilm.load_model(),
        inputs=tuple(InputSpec(n, "int64", ("batch", "sequence")) for n in minilm.INPUT_NAMES),
        outputs=(OutputSpec(minilm.OUTPUT_NAME, "embedding", ("batch", minilm.EMBEDDING_DIM)),),
        task="embedding",
        calibration=calibration,
        validation=validation,
        settings=Settings(
            quantization=QuantizationSettings(calibration_batch_size=16),
            gate=GateSettings(min_mean_cosine=0.99, min_ranking_agreement=0.9),
            latency=LatencySettings(budget_s=sizes.bench_budget_s),
            tensorrt=TensorRTShapes(batch=(1, 8, 64), other={"sequence": (1, 64, 128)}),
            transformer=TransformerHint("bert", num_heads=12, hidden_size=384),
        ),
        text=TextServing.for_tokenizer(minilm.tokenizer_file()),
    )


def build_digits(repository: Path, seed: int = 0, sizes: Sizes = FULL) -> Report:
    """Convert the digits demo into `repository` (trains the CNN first); print and return the report."""
    report = convert(digits_conversion(sizes, seed), repository, console)
    _summary(report)
    return report


def build_minilm(repository: Path, sizes: Sizes = FULL) -> Report:
    """Convert the MiniLM demo into `repository` with its tokenizer and text ensembles."""
    report = convert(minilm_conversion(sizes), repository, console)
    _summary(report)
    return report


def _summary(report: Report) -> None:
    from conversion.summary import print_report

    print_report(report, console)


DEMO_MODELS = {"digits": build_digits, "minilm": build_minilm}


def missing(repository: Path) -> list[str]:
    """The demo models not built in `repository` (no `<name>/manifest.json`)."""
    return [name for name in DEMO_MODELS if not (repository / name / "manifest.json").exists()]


def build_missing(repository: Path, force: bool = False, sizes: Sizes = FULL) -> list[str]:
    """Build each demo model whose config is absent (all of them with `force`)."""
    built = []
    repository.mkdir(parents=True, exist_ok=True)
    absent = missing(repository)
    for name, build in DEMO_MODELS.items():
        if force or name in absent:
            build(repository, sizes=sizes)
            built.append(name)
        else:
            console.print(f"{name}: present in {repository}, skipped (use --force to rebuild)")
    return built

"""The demo models, built offline: the digits CNN and MiniLM sentence embeddings (text in).

`build_missing(repository)` builds each demo model whose config is absent. Full-size runs
(`make convert`) validate on the whole held-out split; tests pass a smaller `Sizes`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from conversion import digits, minilm, tokenizer_model
from conversion.pipeline import Job, Report, convert
from conversion.repository import combined_fingerprint, write_configs
from conversion.spec import (
    Dataset,
    Gate,
    InputSpec,
    ServingOptions,
    TensorRTShapes,
    TransformerHint,
)
from conversion.triton_config import Batching, EnsembleStep, ModelConfigSpec, Tensor, read_config

console = Console(stderr=True)


@dataclass(frozen=True)
class Sizes:
    """How much data each demo uses: `make convert` takes the defaults, tests smaller ones."""

    digits_validation: int = 0  # 0 = the whole held-out split (540 images)
    digits_calibration: int = 256
    minilm_validation: int = 384
    minilm_calibration: int = 64
    bench_budget_s: float = 0.5


FULL = Sizes()

DIGITS_INPUTS = [InputSpec(digits.INPUT_NAME, "float32", ("batch", *digits.IMAGE_SHAPE))]


def digits_job(sizes: Sizes = FULL, seed: int = 0) -> Job:
    data = digits.load_data(seed)
    with console.status("digits: training the CNN on sklearn load_digits"):
        torch.manual_seed(seed)
        model = digits.train(data, seed=seed)
    count = sizes.digits_validation or len(data.test_x)
    return Job(
        name="digits",
        inputs=DIGITS_INPUTS,
        output_names=[digits.OUTPUT_NAME],
        model=model,
        task="classification",
        # calibration from the training split; the gate decides on the held-out test split
        calibration=Dataset.from_arrays(
            {digits.INPUT_NAME: data.train_x[: sizes.digits_calibration]}, 32
        ),
        validation=Dataset.from_arrays(
            {digits.INPUT_NAME: data.test_x[:count]}, 64, data.test_y[:count]
        ),
        gate=Gate(max_accuracy_drop=0.005),
        calibration_batch_size=32,
        static_keep_first_last=True,
        serving=ServingOptions(max_batch_size=64, warmup_batch_sizes=(1, 8)),
        tensorrt_shapes=TensorRTShapes(batch=(1, 16, 64), other={}),
        bench_budget_s=sizes.bench_budget_s,
    )


MINILM_INPUTS = [InputSpec(n, "int64", ("batch", "sequence")) for n in minilm.INPUT_NAMES]


def minilm_datasets(sizes: Sizes = FULL) -> tuple[Dataset, Dataset]:
    tokenizer = minilm.load_tokenizer()
    calib = minilm.calibration_sentences(sizes.minilm_calibration)
    calibration = Dataset(
        [minilm.tokenize(tokenizer, calib, length=64)]
    )  # one length: equal shapes
    # validation: sentences sorted by length, batches of 32 padded to their bucket (as served)
    valid = minilm.validation_sentences(sizes.minilm_validation)
    valid = sorted(valid, key=lambda s: len(tokenizer.encode(s).ids))
    batches = [minilm.tokenize(tokenizer, valid[i : i + 32]) for i in range(0, len(valid), 32)]
    return calibration, Dataset(batches)


def minilm_job(sizes: Sizes = FULL) -> Job:
    calibration, validation = minilm_datasets(sizes)
    return Job(
        name="minilm",
        inputs=MINILM_INPUTS,
        output_names=[minilm.OUTPUT_NAME],
        model=minilm.load_model(),
        task="embedding",
        calibration=calibration,
        validation=validation,
        gate=Gate(min_mean_cosine=0.99, min_ranking_agreement=0.9),
        transformer=TransformerHint("bert", num_heads=12, hidden_size=384),
        calibration_method="minmax",
        calibration_batch_size=16,
        tolerance=(1e-4, 1e-3),
        serving=ServingOptions(max_batch_size=64, warmup_batch_sizes=(1, 8), dynamic_size=16),
        tensorrt_shapes=TensorRTShapes(batch=(1, 8, 64), other={"sequence": (1, 64, 128)}),
        bench_budget_s=sizes.bench_budget_s,
    )


def write_text_models(repository: Path, model: str = "minilm") -> list[str]:
    """The tokenizer model and one `<served>_text` ensemble per served ONNX variant of `model`."""
    tokenizer_name = f"{model}_tokenizer"
    tok_dir = repository / tokenizer_name
    tok_print = tokenizer_model.write_version(tok_dir / "1", minilm.tokenizer_file())
    batching = Batching(max_queue_delay_us=1000, queue_timeout_us=1_000_000, max_queue_size=1024)
    text = Tensor("text", "object", (1,))
    tok_spec = ModelConfigSpec(
        name=tokenizer_name,
        platform="",
        backend="python",
        inputs=(text,),
        outputs=(Tensor("input_ids", "int64", (-1,)), Tensor("attention_mask", "int64", (-1,))),
        max_batch_size=64,
        batching=batching,
        instance_count=2,  # one instance behind a queue policy stalls now and then (Triton 2.51)
        fingerprint=tok_print,
        parameters={"buckets": ",".join(map(str, minilm.BUCKETS))},
    )
    write_configs(tok_dir, tok_spec, tok_spec)  # the tokenizer runs on the CPU in both configs
    written = [tokenizer_name]
    for served in sorted(p.parent.name for p in repository.glob(f"{model}*/config.pbtxt")):
        config = read_config(repository / served / "config.pbtxt")
        if config.platform != "onnxruntime_onnx" or not (
            served == model or served.startswith(model + "_")
        ):
            continue
        member_print = config.parameters["fingerprint"].string_value
        ensemble = ModelConfigSpec(
            name=f"{served}_text",
            platform="ensemble",
            inputs=(text,),
            outputs=(Tensor(minilm.OUTPUT_NAME, "float32", (minilm.EMBEDDING_DIM,)),),
            max_batch_size=64,
            batching=None,
            fingerprint=combined_fingerprint(tok_print, member_print),
            ensemble_steps=(
                EnsembleStep(
                    tokenizer_name,
                    {"text": "text"},
                    {"input_ids": "_input_ids", "attention_mask": "_attention_mask"},
                ),
                EnsembleStep(
                    served,
                    {"input_ids": "_input_ids", "attention_mask": "_attention_mask"},
                    {minilm.OUTPUT_NAME: minilm.OUTPUT_NAME},
                ),
            ),
        )
        write_configs(repository / ensemble.name, ensemble, ensemble)
        (repository / ensemble.name / "1").mkdir(exist_ok=True)  # Triton wants a version folder
        written.append(ensemble.name)
    return written


def build_digits(repository: Path, seed: int = 0, sizes: Sizes = FULL) -> Report:
    report = convert(digits_job(sizes, seed), repository, console)
    _summary(report)
    return report


def build_minilm(repository: Path, sizes: Sizes = FULL) -> Report:
    # stale ensembles of variants that are no longer served must go first
    for old in repository.glob("minilm*_text"):
        shutil.rmtree(old)
    report = convert(minilm_job(sizes), repository, console)
    report.served.extend(write_text_models(repository, "minilm"))
    _summary(report)
    return report


def _summary(report: Report) -> None:
    from conversion.summary import print_report

    print_report(report, console)


DEMO_MODELS = {"digits": build_digits, "minilm": build_minilm}


def build_missing(repository: Path, force: bool = False, sizes: Sizes = FULL) -> list[str]:
    """Build each demo model whose config is absent (all of them with `force`)."""
    built = []
    repository.mkdir(parents=True, exist_ok=True)
    for name, build in DEMO_MODELS.items():
        marker = repository / name / "manifest.json"
        if force or not marker.exists():
            build(repository, sizes=sizes)
            built.append(name)
        else:
            console.print(f"{name}: present in {repository}, skipped (use --force to rebuild)")
    return built

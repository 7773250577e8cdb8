"""Builds the demo models into a model repository (skipping the ones already there)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from rich.console import Console

from conversion import digits
from conversion.export import check_against_torch, export_onnx
from conversion.repository import publish
from conversion.triton_config import Batching, ModelConfigSpec, Tensor

console = Console()

DIGITS_SPEC = ModelConfigSpec(
    name="digits",
    inputs=(Tensor(digits.INPUT_NAME, "float32", digits.IMAGE_SHAPE),),
    outputs=(Tensor(digits.OUTPUT_NAME, "float32", (digits.NUM_CLASSES,)),),
    max_batch_size=64,
    batching=Batching(max_queue_delay_us=2000, queue_timeout_us=1_000_000, max_queue_size=1024),
)


def build_digits(repository: Path, seed: int = 0) -> float:
    """Train, export, verify and publish the digits CNN; return its test accuracy in ONNX Runtime."""
    data = digits.load_data(seed)
    with console.status("digits: training the CNN on sklearn load_digits"):
        model = digits.train(data, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        sample = {digits.INPUT_NAME: torch.from_numpy(data.test_x[:16])}
        export_onnx(
            model,
            sample,
            [digits.OUTPUT_NAME],
            onnx_path,
            dynamic_axes={digits.INPUT_NAME: {0: "batch"}, digits.OUTPUT_NAME: {0: "batch"}},
        )
        check_against_torch(model, onnx_path, sample)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        logits = session.run(None, {digits.INPUT_NAME: data.test_x})[0]
        publish(repository, DIGITS_SPEC, onnx_path)
    accuracy = digits.accuracy(np.asarray(logits), data.test_y)
    console.print(f"digits: test accuracy {accuracy:.2%} -> {repository / DIGITS_SPEC.name}")
    return accuracy


DEMO_MODELS = {"digits": build_digits}


def build_missing(repository: Path, force: bool = False) -> list[str]:
    """Build each demo model whose config is absent (all of them with `force`)."""
    built = []
    for name, build in DEMO_MODELS.items():
        if force or not (repository / name / "config.pbtxt").exists():
            build(repository)
            built.append(name)
        else:
            console.print(f"{name}: present in {repository}, skipped (use --force to rebuild)")
    return built

"""PyTorch -> ONNX with dynamic axes, checked by `onnx.checker` and against ONNX Runtime."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch


class ExportError(RuntimeError):
    """A model could not be exported or does not match PyTorch after export."""


def export_onnx(
    model: torch.nn.Module,
    sample_inputs: dict[str, torch.Tensor],
    output_names: list[str],
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
    opset: int = 17,
) -> Path:
    """Export with the TorchScript exporter, which keeps graphs the ORT optimizers can fuse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    chatter = io.StringIO()  # the exporter prints its IR graph on failure; keep the message short
    try:
        with (
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            _export(model, sample_inputs, output_names, path, dynamic_axes, opset)
    except Exception as error:  # torch raises many unrelated types here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from error
    onnx.checker.check_model(str(path), full_check=True)
    return path


def _export(model, sample_inputs, output_names, path, dynamic_axes, opset) -> None:
    torch.onnx.export(
        model,
        tuple(sample_inputs.values()),
        str(path),
        input_names=list(sample_inputs),
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=opset,
        dynamo=False,
    )


def check_against_torch(
    model: torch.nn.Module,
    onnx_path: Path,
    sample_inputs: dict[str, torch.Tensor],
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> float:
    """Run both on `sample_inputs`; return the max absolute deviation or raise ExportError."""
    with torch.no_grad():
        expected = model(*sample_inputs.values())
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {name: t.numpy() for name, t in sample_inputs.items()})
    worst = 0.0
    for want, got in zip(expected, actual, strict=True):
        want = want.numpy()
        worst = max(worst, float(np.max(np.abs(want - got))))
        if not np.allclose(want, got, atol=atol, rtol=rtol):
            raise ExportError(
                f"ONNX Runtime output differs from PyTorch by up to {worst:.3g} "
                f"(atol={atol}, rtol={rtol})"
            )
    return worst

"""Precision variants: FP16 (FP32 inputs/outputs kept) and INT8 dynamic / static QDQ."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizers log a 'consider pre-processing' warning on the root logger; hide it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def to_fp16(source: Path, target: Path) -> Path:
    """FP16 weights and compute, FP32 at the model's inputs and outputs.

    onnxruntime.transformers.float16 (not onnxconverter-common, whose keep_io_types leaves an
    FP16 Cast feeding an FP32 output in MiniLM's pooling and fails to load).
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
    return target


def int8_dynamic(source: Path, target: Path, per_channel: bool = True) -> Path:
    """Weights INT8 per channel; activations quantized at run time (no calibration)."""
    with _quiet_root_logger():
        _quantize_dynamic(source, target, per_channel)
    return target


def _quantize_dynamic(source: Path, target: Path, per_channel: bool) -> None:
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        # needed for models fused by the transformers optimizer (their value infos lack types)
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


QUANTIZABLE = ("Conv", "Gemm", "MatMul", "Attention")


def first_and_last_layers(path: Path, op_types: tuple[str, ...] = QUANTIZABLE) -> list[str]:
    """Names of the first and the last compute node (the usual 'keep them in FP32' recipe).

    Digits: the 1-channel first convolution gains nothing from INT8 (its im2col dominates) and
    the 10-way classifier is the most sensitive layer; keeping both FP32 is faster and exact.
    """
    nodes = [
        n.name
        for n in onnx.load(str(path), load_external_data=False).graph.node
        if n.op_type in op_types
    ]
    return sorted({nodes[0], nodes[-1]}) if nodes else []


class BatchReader(CalibrationDataReader):
    """Feeds equal-shaped calibration batches to the static quantizer."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self._batches = batches
        self._iter = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._batches)

    def __len__(self) -> int:
        return len(self._batches)


def int8_static(
    source: Path,
    target: Path,
    batches: list[dict[str, np.ndarray]],
    method: str = "minmax",
    per_channel: bool = True,
    op_types: list[str] | None = None,
    nodes_to_exclude: list[str] | None = None,
) -> Path:
    """QDQ INT8 (U8 activations, S8 weights) calibrated on `batches` with MinMax/Entropy/Percentile."""
    if not batches:
        raise ValueError("static quantization needs at least one calibration batch")
    with _quiet_root_logger():
        quantize_static(
            str(source),
            str(target),
            BatchReader(batches),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=CALIBRATION_METHODS[method],
            op_types_to_quantize=op_types,
            nodes_to_exclude=nodes_to_exclude or [],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return target

"""Precision variants: FP16 (FP32 inputs/outputs kept) and INT8 dynamic / static QDQ.

Every builder takes `keep_fp32`, node names left in FP32 (the user's `--keep-fp32`, or what the
accuracy-aware INT8 search found). Static INT8 calibrates once: the tensor ranges are cached in
a JSON file (onnxruntime's `calibration_cache_path`) that later builds of the same model reuse.
"""

from __future__ import annotations

import contextlib
import logging
import re
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

from conversion.progress import describe

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
QUANTIZABLE = ("Conv", "Gemm", "MatMul", "Attention")
# Static INT8 of a transformer (built from the unfused graph, optimize.Optimized): only the
# layers with weights. Quantizing every op there also quantizes LayerNorm's and Softmax's
# primitive ops: MiniLM's embeddings fell to mean cosine 0.39 against FP32 (0.94 quantizing
# only these; the INT8 search then keeps the few layers FP32 that bring it to 0.99).
TRANSFORMER_STATIC_OPS = ("MatMul", "Gemm")
# MinMax: the calibration rows go through the calibrator MINMAX_ROWS at a time and each chunk's
# ranges are merged before the next ("CalibStridedMinMax" of one chunk), instead of holding
# every activation of every row until the end: EfficientNet-Lite1 at 240 px holds ~140 MB of
# activations per image (6.2 GB peak RSS calibrating batches of 32, from 1.6 GB before). Min and max do not depend
# on how rows are grouped. Not "CalibMaxIntermediateOutputs": onnxruntime 1.32 drops the
# batches it holds when it reaches that count. Entropy and percentile keep every row's
# activations (histograms over all of them).
MINMAX_ROWS = 4


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


def to_fp16(source: Path, target: Path, keep_fp32: tuple[str, ...] = ()) -> Path:
    """FP16 weights and compute, FP32 at the model's inputs and outputs and in `keep_fp32` nodes.

    onnxruntime.transformers.float16 (not onnxconverter-common, whose keep_io_types leaves an
    FP16 Cast feeding an FP32 output in MiniLM's pooling and fails to load).
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(
        onnx.load(str(source)), keep_io_types=True, node_block_list=list(keep_fp32) or None
    )
    onnx.save(model, str(target))
    return target


def int8_dynamic(
    source: Path, target: Path, per_channel: bool = True, keep_fp32: tuple[str, ...] = ()
) -> Path:
    """Weights INT8 (per channel); activations quantized at run time (no calibration)."""
    # quantize_dynamic first rewrites each Gemm as MatMul `<name>_MatMul` + Add, then matches
    # nodes_to_exclude against the new names.
    exclude = [name for node in keep_fp32 for name in (node, f"{node}_MatMul")]
    with _quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=exclude,
            # needed for models fused by the transformers optimizer (their value infos lack types)
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return target


def quantizable_nodes(path: Path, op_types: tuple[str, ...] = QUANTIZABLE) -> list[str]:
    """Names of the compute nodes INT8 quantizes (Conv, Gemm, MatMul, Attention), in graph order."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in op_types]


def activation_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes with no weight input (attention's Q x K^T and scores x V), in
    graph order: static INT8 of a transformer keeps them FP32 (pipeline.keep_fp32), as it keeps
    LayerNorm and Softmax by quantizing only TRANSFORMER_STATIC_OPS."""
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    weights |= {out for n in graph.node if n.op_type == "Constant" for out in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not set(n.input) & weights]


def static_op_types(chosen: tuple[str, ...] | None, transformer: bool) -> tuple[str, ...] | None:
    """What static INT8 quantizes: the user's op types (`chosen`) if given, else a transformer's
    weight layers (TRANSFORMER_STATIC_OPS), else every type the quantizer knows (None)."""
    if chosen:
        return chosen
    return TRANSFORMER_STATIC_OPS if transformer else None


def quantized_op_types(kind: str) -> set[str]:
    """The op types onnxruntime's quantizer quantizes for `kind` by default (its registries)."""
    from onnxruntime.quantization.registry import (
        IntegerOpsRegistry,
        QDQRegistry,
        QLinearOpsRegistry,
    )

    if kind == "int8_dynamic":
        return set(IntegerOpsRegistry) | {"Gemm"}  # Gemm: rewritten as MatMul + Add first
    return set(QDQRegistry) | set(QLinearOpsRegistry)


def layers(path: Path, kind: str) -> dict[str, list[str]]:
    """{compute node: the nodes of its layer}, in graph order: each Conv/Gemm/MatMul/Attention
    with the other quantized nodes after it up to the next compute node (its activation,
    padding, residual Add...). Keeping a layer in FP32 keeps all of them: a compute node alone
    would leave the quantized activations around it."""
    graph = onnx.load(str(path), load_external_data=False).graph
    quantized = quantized_op_types(kind)
    found: dict[str, list[str]] = {}
    leading: list[str] = []  # quantized nodes before the first compute node
    current = None
    for node in graph.node:
        if node.op_type in QUANTIZABLE:
            current = node.name
            found[current] = [*leading, node.name]
            leading = []
        elif node.op_type in quantized and node.name:
            (found[current] if current else leading).append(node.name)
    return found


def first_and_last_layers(path: Path, op_types: tuple[str, ...] = QUANTIZABLE) -> list[str]:
    """Names of the first and the last compute node (the usual 'keep them in FP32' recipe).

    Digits: the 1-channel first convolution gains nothing from INT8 (its im2col dominates) and
    the 10-way classifier is the most sensitive layer; keeping both FP32 is faster and exact.
    """
    nodes = quantizable_nodes(path, op_types)
    return sorted({nodes[0], nodes[-1]}) if nodes else []


class BatchReader(CalibrationDataReader):
    """Feeds equal-shaped calibration batches to the static quantizer (a range of them at a time
    when the quantizer calls `set_range`)."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self._batches = batches
        self._iter = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch, or None when done (the CalibrationDataReader interface)."""
        return next(self._iter, None)

    def rewind(self) -> None:
        """Start again from the first batch."""
        self._iter = iter(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Serve batches [start_index, end_index) only (quantize_static's CalibStridedMinMax)."""
        self._iter = iter(self._batches[start_index:end_index])

    def __len__(self) -> int:
        return len(self._batches)


def int8_static(
    source: Path,
    target: Path,
    batches: list[dict[str, np.ndarray]],
    method: str = "minmax",
    per_channel: bool = True,
    op_types: tuple[str, ...] | None = None,
    keep_fp32: tuple[str, ...] = (),
    cache: Path | None = None,
) -> Path:
    """QDQ INT8 (U8 activations, S8 weights) calibrated on `batches` with MinMax/Entropy/Percentile.

    With `cache`, the calibrated ranges are written there on the first call and read back on
    later ones (same source model and op types), so only the first build calibrates.
    """
    if not batches:
        raise ValueError("static quantization needs at least one calibration batch")
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    if method == "minmax":
        extra["CalibStridedMinMax"] = 1
        batches = [
            {name: array[start : start + MINMAX_ROWS] for name, array in batch.items()}
            for batch in batches
            for start in range(0, len(next(iter(batch.values()))), MINMAX_ROWS)
        ]
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
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=list(keep_fp32),
            extra_options=extra,
            calibration_cache_path=cache,
        )
    return target


def failing_node(text: str, model: Path) -> onnx.NodeProto | None:
    """The node an error message points at: one it names; else the compute node that takes a
    tensor it names (a weight, a bias, an activation); else the node that makes that tensor."""
    graph = onnx.load(str(model), load_external_data=False).graph
    words = set(re.findall(r"[\w./:\-]+", text))
    named = [n for n in graph.node if n.name and n.name in words]
    consumers = [n for n in graph.node if n.op_type in QUANTIZABLE and set(n.input) & words]
    producers = [n for n in graph.node if set(n.output) & words]
    return next(iter(named + consumers + producers), None)


def explain_failure(error: BaseException, kind: str, model: Path) -> str:
    """A builder's or loader's error, the node it points at (if any) and what to try next."""
    node = failing_node(str(error), model)
    if node is None:
        method = "--calibration-method minmax, " if kind == "int8_static" else ""
        return (
            f"{describe(error)}; leave {kind} out of --variants, or try {method}--keep-fp32 <node>"
        )
    return (
        f"{describe(error)} (at node '{node.name}', {node.op_type}); try --keep-fp32 "
        f"'{node.name}' (keeps that {node.op_type} in FP32), or leave {kind} out of --variants"
    )

"""Valid value ranges of a model's index inputs, read from its ONNX graph.

An integer graph input that indexes an embedding table (token ids, token type ids, ...) is only
valid inside the table: `[0, rows - 1]`. Outside it ONNX Runtime fails the request, and Triton's
native backends fail the whole dynamic batch it was batched into. The converter records the range
in the model's config (`valid_range:<input>`, see `conversion.triton_config`), and both gateways
refuse values outside it with a 400 before Triton sees them.

Recognized: input -> any chain of Cast / Identity / Reshape / Unsqueeze / Squeeze / Flatten ->
the indices of a `Gather` (axis 0) whose data is an initializer (`torch.nn.Embedding` exports as
exactly this). An input that indexes several tables gets the smallest range.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx

# Ops that pass values through unchanged, so an index input keeps its meaning after them.
PASS_THROUGH = frozenset({"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten"})
INTEGER_TYPES = frozenset(
    {
        onnx.TensorProto.INT8,
        onnx.TensorProto.INT16,
        onnx.TensorProto.INT32,
        onnx.TensorProto.INT64,
        onnx.TensorProto.UINT8,
        onnx.TensorProto.UINT16,
        onnx.TensorProto.UINT32,
        onnx.TensorProto.UINT64,
    }
)


def index_ranges(model_path: Path) -> dict[str, tuple[int, int]]:
    """{input name: (lowest, highest) valid value, both inclusive} for each index input.

    Reads only the graph (external weight data is not loaded). Inputs that index no embedding
    table are absent. Raises what `onnx.load` raises for a file that is not an ONNX model.
    """
    graph = onnx.load(str(model_path), load_external_data=False).graph
    rows = {init.name: init.dims[0] for init in graph.initializer if len(init.dims) >= 1}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    ranges = {}
    for graph_input in graph.input:
        if graph_input.type.tensor_type.elem_type not in INTEGER_TYPES:
            continue
        tables = [
            rows[n.input[0]] for n in _gathers(graph_input.name, consumers) if n.input[0] in rows
        ]
        if tables:
            ranges[graph_input.name] = (0, int(min(tables)) - 1)
    return ranges


def _gathers(
    name: str, consumers: dict[str, list[onnx.NodeProto]], seen: frozenset[str] = frozenset()
) -> Iterator[onnx.NodeProto]:
    """Gather nodes (axis 0) that use the values of tensor `name` as their indices."""
    for node in consumers.get(name, []):
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name:
            if _axis(node) == 0:
                yield node
        elif node.op_type in PASS_THROUGH and node.input[0] == name and node.output[0] not in seen:
            yield from _gathers(node.output[0], consumers, seen | {node.output[0]})


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 0)

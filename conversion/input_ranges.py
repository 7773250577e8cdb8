"""Valid value ranges of a model's index inputs, read from its ONNX graph.

An integer graph input that indexes an embedding table (token ids, token type ids, ...) is only
valid inside the table: `[0, rows - 1]`. Outside it ONNX Runtime fails the request, and Triton's
native backends fail the whole dynamic batch it was batched into. The converter records the range
in the model's config (`valid_range:<input>`, see `conversion.triton_config`), and both gateways
refuse values outside it with a 400 before Triton sees them.

Recognized: input -> any chain of Cast / Identity / Reshape / Unsqueeze / Squeeze / Flatten ->
the indices of a `Gather` (axis 0) whose data is an initializer (`torch.nn.Embedding` exports as
exactly this). An input that indexes several tables gets the smallest range.

`max_lengths` finds how long a variable axis may be: a constant buffer sliced to an input's
length (`Slice(buffer, ends=Shape(input)[k])`, as BERT's `position_ids` / `token_type_ids`
buffers export: `self.position_ids[:, :seq_length]`) holds only as many entries as the buffer;
a longer input makes ONNX Runtime fail further on (MiniLM at 513 tokens: `Expand node ...
invalid expand shape`). Recorded as `max_length:<input>` (see `conversion.triton_config`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx
from onnx import numpy_helper

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


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """{tensor name: its value} of the initializers and Constant nodes (tensor attribute)."""
    found = {init.name: init for init in graph.initializer}
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None:
            found[node.output[0]] = value
    return found


def _shape_axis(
    name: str, producers: dict[str, onnx.NodeProto], constants: dict[str, onnx.TensorProto]
) -> tuple[str, int] | None:
    """(input, axis) when tensor `name` is `Shape(input)[axis]` (through pass-through ops)."""
    node = producers.get(name)
    while node is not None and node.op_type in PASS_THROUGH:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Gather" or _axis(node) != 0:
        return None
    shape, index = producers.get(node.input[0]), constants.get(node.input[1])
    if shape is None or shape.op_type != "Shape" or index is None:
        return None
    start = next((a.i for a in shape.attribute if a.name == "start"), 0)
    return shape.input[0], start + int(numpy_helper.to_array(index).reshape(-1)[0])


def axis_limits(model_path: Path) -> dict[str, dict[int, int]]:
    """{input: {axis: largest size}} for each input axis that slices a constant buffer (module
    docstring); several buffers on one axis give the smallest. Reads only the graph."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    constants = _constants(graph)
    producers = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    limits: dict[str, dict[int, int]] = {}
    for node in graph.node:
        if node.op_type != "Slice" or len(node.input) < 4 or node.input[0] not in constants:
            continue
        axes, starts = constants.get(node.input[3]), constants.get(node.input[1])
        found = _shape_axis(node.input[2], producers, constants)
        if axes is None or starts is None or found is None or found[0] not in inputs:
            continue
        axes, starts = (numpy_helper.to_array(t).reshape(-1) for t in (axes, starts))
        if axes.size != 1 or starts.size != 1 or starts[0] < 0:
            continue
        size = int(constants[node.input[0]].dims[int(axes[0])]) - int(starts[0])
        name, index = found
        limits.setdefault(name, {})[index] = min(size, limits.get(name, {}).get(index, size))
    return limits


def max_lengths(model_path: Path, axis_names: dict[str, dict[int, str]]) -> dict[str, int]:
    """{input: largest length} of inputs with one variable axis besides the batch (axis 0).

    `axis_names`: {input: {axis index: name}} of the dynamic axes (InputSpec.dynamic_axes); a
    limit found on one input holds for every input sharing that axis name (`attention_mask`
    has the `sequence` of `input_ids`). Inputs with no limit, or with several variable axes
    besides the batch, are absent.
    """
    by_name: dict[str, int] = {}
    for name, axes in axis_limits(model_path).items():
        for index, size in axes.items():
            axis = axis_names.get(name, {}).get(index)
            if axis is not None and index != 0:
                by_name[axis] = min(size, by_name.get(axis, size))
    found = {}
    for name, axes in axis_names.items():
        variable = [axis for index, axis in axes.items() if index != 0]
        if len(variable) == 1 and variable[0] in by_name:
            found[name] = by_name[variable[0]]
    return found

"""Checks a request against the model's metadata and config before it reaches Triton (-> 400).

The messages are gateway-grpc's too (gateway-grpc/validation.go).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.errors import GatewayError, listed
from gateway.model_config import (
    ALLOW_EMPTY_PREFIX,
    MAX_LENGTH_PREFIX,
    SHARED_AXIS_PREFIX,
    VALID_RANGE_PREFIX,
)
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo

INTEGER_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)


def check_input_names(info: ModelInfo, names: Sequence[str]) -> None:
    """GatewayError 400 when a name is given twice (the first such, in request order) or names
    no input of the model (the message lists the model's inputs); missing inputs are left to
    validate_request."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise GatewayError(400, f"input '{name}' is given more than once")
        seen.add(name)
    unknown = sorted(set(names) - set(info.inputs))
    if unknown:
        raise GatewayError(
            400,
            f"model '{info.name}' has no input {listed(unknown)}; inputs: {listed(sorted(info.inputs))}",
        )


def validate_request(
    info: ModelInfo, inputs: Sequence[Tensor], outputs: Sequence[str] | None
) -> None:
    """Check `inputs` and the requested `outputs` (None: all) against the model before Triton:
    names, datatypes, shapes (-1 matches any size; with max_batch_size > 0 the first dimension
    is the batch, equal across inputs and in 1..max_batch_size), shared axes, empty axes, lengths
    of variable axes and valid ranges.
    Raises GatewayError 400 naming the first problem.
    """
    names = [t.name for t in inputs]
    check_input_names(info, names)
    missing = sorted(set(info.inputs) - set(names))
    if missing:
        raise GatewayError(400, f"model '{info.name}' needs input {listed(missing)}")
    for name in outputs or ():
        if name not in info.outputs:
            raise GatewayError(
                400,
                f"model '{info.name}' has no output '{name}'; outputs: {listed(sorted(info.outputs))}",
            )
    batches: list[tuple[str, int]] = []  # (input, its batch size) in request order
    for tensor in inputs:
        expected = info.inputs[tensor.name]
        if tensor.datatype != expected.datatype:
            raise GatewayError(
                400,
                f"input '{tensor.name}': datatype {tensor.datatype}, model expects {expected.datatype}",
            )
        if len(tensor.shape) != len(expected.shape) or any(
            want not in (-1, got) for want, got in zip(expected.shape, tensor.shape, strict=False)
        ):
            raise GatewayError(
                400,
                f"input '{tensor.name}': shape {list(tensor.shape)}, model expects {list(expected.shape)}"
                + (" (first dimension = batch)" if info.max_batch_size else ""),
            )
        if info.max_batch_size and tensor.shape:  # no batch axis where metadata shows none
            batches.append((tensor.name, tensor.shape[0]))
    for name, size in batches[1:]:
        if size != batches[0][1]:
            raise GatewayError(
                400,
                f"inputs '{batches[0][0]}' and '{name}' disagree on the batch size: "
                f"{batches[0][1]} vs {size}",
            )
    if batches:
        batch = batches[0][1]
        if not 1 <= batch <= info.max_batch_size:
            raise GatewayError(
                400, f"batch size {batch} is outside 1..{info.max_batch_size} (max_batch_size)"
            )
    check_shared_axes(info, {t.name: t.shape for t in inputs})
    for tensor in inputs:
        check_not_empty(info, tensor)
        check_length(info, tensor)
        check_range(info, tensor)


def variable_lengths(info: ModelInfo, tensor: Tensor) -> list[int]:
    """The lengths of `tensor`'s axes that the model declares variable (-1), the batch aside."""
    skip = 1 if info.max_batch_size else 0
    declared, given = info.inputs[tensor.name].shape[skip:], tensor.shape[skip:]
    return [got for want, got in zip(declared, given, strict=True) if want == -1]


def check_shared_axes(info: ModelInfo, shapes: dict[str, Sequence[int]]) -> None:
    """Axes grouped by a `shared_axis:<name>` parameter have one length (ONNX's `dim_param`
    rule): GatewayError 400 naming the group's first input and the first that differs from it
    (groups in the order of their names, as gateway-grpc checks them).

    `shapes`: {input: shape} of the request, every input of the model present with the rank its
    metadata declares (validate_request checks both first). A group naming an input the model
    lacks or an axis beyond the input's rank is a misconfiguration: GatewayError 500.
    """
    for axis_name, members in sorted(info.shared_axes.items()):
        lengths = []
        for name, axis in members:
            if name not in shapes or axis >= len(shapes[name]):
                raise GatewayError(
                    500,
                    f"model '{info.name}': config parameter {SHARED_AXIS_PREFIX}{axis_name} "
                    f"names axis {axis} of input '{name}', which the model does not have",
                )
            lengths.append(shapes[name][axis])
        for (name, _), length in zip(members[1:], lengths[1:], strict=True):
            if length != lengths[0]:
                raise GatewayError(
                    400,
                    f"inputs '{members[0][0]}' and '{name}' disagree on the length of axis "
                    f"'{axis_name}': {lengths[0]} vs {length} (config parameter "
                    f"{SHARED_AXIS_PREFIX}{axis_name})",
                )


def check_not_empty(info: ModelInfo, tensor: Tensor) -> None:
    """A zero-length variable (-1) axis, batch aside, is a 400 unless `allow_empty:<input>`."""
    if tensor.name in info.allow_empty or 0 not in tensor.shape:
        return
    if 0 in variable_lengths(info, tensor):
        raise GatewayError(
            400,
            f"input '{tensor.name}': shape {list(tensor.shape)} has an empty axis, which the "
            f"model does not accept (config parameter {ALLOW_EMPTY_PREFIX}{tensor.name})",
        )


def check_length(info: ModelInfo, tensor: Tensor) -> None:
    """A variable (-1) axis, batch aside, longer than `max_length:<input>` is a 400 (ONNX Runtime
    would fail it inside Triton: MiniLM's position table has 512 rows)."""
    limit = info.max_lengths.get(tensor.name)
    if limit is None:
        return
    for got in variable_lengths(info, tensor):
        if got > limit:
            raise GatewayError(
                400,
                f"input '{tensor.name}': length {got} exceeds the model's maximum {limit} "
                f"(config parameter {MAX_LENGTH_PREFIX}{tensor.name})",
            )


def check_range(info: ModelInfo, tensor: Tensor) -> None:
    """Every value of an input with `valid_range:<input>` lies in it (both bounds inclusive);
    integer datatypes only. GatewayError 400 naming the first value outside, in row-major order."""
    bounds = info.valid_ranges.get(tensor.name)
    if bounds is None or tensor.datatype not in INTEGER_DATATYPES or not tensor.array.size:
        return
    lowest, highest = bounds
    values = tensor.array
    if values.min() >= lowest and values.max() <= highest:
        return
    flat = values.ravel()
    first = flat[np.flatnonzero((flat < lowest) | (flat > highest))[0]]
    raise GatewayError(
        400,
        f"input '{tensor.name}': value {first} is outside the valid range [{lowest}, {highest}] "
        f"(config parameter {VALID_RANGE_PREFIX}{tensor.name})",
    )

"""Checks a request against the model's metadata before it reaches Triton (-> 400)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import GatewayError
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo


def check_input_names(info: ModelInfo, names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise GatewayError(400, "an input is given more than once")
    unknown = sorted(set(names) - set(info.inputs))
    if unknown:
        raise GatewayError(
            400, f"model '{info.name}' has no input {unknown}; inputs: {sorted(info.inputs)}"
        )


def validate_request(
    info: ModelInfo, inputs: Sequence[Tensor], outputs: Sequence[str] | None
) -> None:
    names = [t.name for t in inputs]
    check_input_names(info, names)
    missing = sorted(set(info.inputs) - set(names))
    if missing:
        raise GatewayError(400, f"model '{info.name}' needs input {missing}")
    for name in outputs or ():
        if name not in info.outputs:
            raise GatewayError(
                400, f"model '{info.name}' has no output '{name}'; outputs: {sorted(info.outputs)}"
            )
    batch_sizes = set()
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
        if info.max_batch_size:
            batch_sizes.add(tensor.shape[0])
    if len(batch_sizes) > 1:
        raise GatewayError(400, f"inputs disagree on the batch size: {sorted(batch_sizes)}")
    if batch_sizes:
        batch = batch_sizes.pop()
        if not 1 <= batch <= info.max_batch_size:
            raise GatewayError(
                400, f"batch size {batch} is outside 1..{info.max_batch_size} (max_batch_size)"
            )

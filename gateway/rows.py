"""The rows of a batched request and of its answer: pick, split, stack, and check them.

A model with max_batch_size > 0 takes tensors of shape `[batch, ...]`; row i of a request is
index i of every input's batch axis, row i of the answer index i of every output's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from gateway.errors import GatewayError, listed
from gateway.tensors import FLOAT_DATATYPES, Tensor, as_floats
from gateway.triton_client import ModelInfo

Row = dict[str, Tensor]  # output name -> that output's row (shape without the batch axis)


def output_names(info: ModelInfo, requested: Sequence[str] | None) -> list[str]:
    """The outputs an answer holds: those requested, each once, in request order; else all."""
    return list(dict.fromkeys(requested)) if requested else list(info.outputs)


def pick_rows(inputs: Sequence[Tensor], rows: list[int]) -> list[Tensor]:
    """The inputs holding only `rows`, in that order (shape `[len(rows), ...]`)."""
    if rows == list(range(inputs[0].shape[0])):
        return list(inputs)
    return [Tensor(t.name, t.datatype, t.array[rows]) for t in inputs]


def split_rows(outputs: dict[str, Tensor], count: int) -> list[Row]:
    """Triton's answer to `count` rows, one Row each; GatewayError 502 when an output does not
    hold `count` rows (a model that breaks the batching contract)."""
    for name, tensor in outputs.items():
        if not tensor.shape or tensor.shape[0] != count:
            raise GatewayError(
                502,
                f"malformed response from Triton: output '{name}' has shape "
                f"{list(tensor.shape)} for {count} rows",
            )
    return [
        {name: Tensor(name, t.datatype, t.array[row, ...]) for name, t in outputs.items()}
        for row in range(count)
    ]


def stack_rows(model: str, rows: Sequence[Row]) -> dict[str, Tensor]:
    """One answer from rows in request order (each output `[len(rows), ...]`, in the first row's
    output order: Triton's, as stored).

    Raises GatewayError 500 when the rows of an output differ in shape: only a model forced to
    `row_cache: "true"` whose outputs have a variable axis can get here.
    """
    answer = {}
    for name in rows[0]:
        arrays = [row[name].array for row in rows]
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            raise GatewayError(
                500,
                f"model '{model}': cached rows of output '{name}' differ in shape "
                f"({listed([list(s) for s in shapes])}); set its config parameter row_cache "
                'to "false"',
            )
        answer[name] = Tensor(name, rows[0][name].datatype, np.stack(arrays))
    return answer


def check_complete(outputs: dict[str, Tensor], expected: Iterable[str]) -> None:
    """GatewayError 502 unless Triton answered exactly the `expected` outputs."""
    expected = set(expected)
    if set(outputs) != expected:
        raise GatewayError(
            502,
            f"incomplete response from Triton: {listed(sorted(outputs))} != "
            f"{listed(sorted(expected))}",
        )


def all_finite(tensors: Iterable[Tensor]) -> bool:
    """True when no floating-point tensor (FP16, BF16, FP32, FP64) holds NaN or +-Infinity."""
    return all(
        bool(np.isfinite(as_floats(t)).all())
        for t in tensors
        if t.datatype in FLOAT_DATATYPES or t.datatype == "BF16"
    )

"""Tensor values as JSON, both ways, as Triton 2.51's HTTP API treats them.

Out: NaN and +-Infinity are written as the bare tokens `NaN`, `Infinity`, `-Infinity` (Triton's
rapidjson writer does so; measured on tritonserver 2.51), never as `null`. In: those tokens are
read as the values they name (Triton's parser accepts them too), but a number literal too large
for its datatype (`1e39` as FP32, `1e309` even as FP64, which Triton's parser refuses) is a 400
naming the input, never a silent Infinity.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import orjson

from gateway.errors import GatewayError
from gateway.tensors import FLOAT_DATATYPES, Tensor, as_floats

_TOKENS = {True: b"Infinity", False: b"-Infinity"}


def json_values(array: np.ndarray, datatype: str) -> Any:
    """Values ready for orjson (OPT_SERIALIZE_NUMPY): BYTES as strings, BF16 as the FP32 values
    it holds, non-finite floats as Triton's tokens (an `orjson.Fragment`), everything else the
    array itself."""
    if datatype == "BF16":
        return json_values(as_floats(Tensor("", datatype, array)), "FP32")
    if datatype == "BYTES":
        return (
            [item.decode("utf-8", "replace") for item in array.ravel()]
            if array.ndim == 1
            else [json_values(row, datatype) for row in array]
        )
    if datatype in FLOAT_DATATYPES and not np.isfinite(array).all():
        return orjson.Fragment(_with_tokens(array))
    return array


def _with_tokens(array: np.ndarray) -> bytes:
    """orjson writes a non-finite float as `null`, and a numeric array holds no other `null`:
    each becomes the token of the value it stands for, in row-major order."""
    pieces = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY).split(b"null")
    flat = array.ravel()
    tokens = [b"NaN" if np.isnan(v) else _TOKENS[bool(v > 0)] for v in flat[~np.isfinite(flat)]]
    return b"".join(piece + token for piece, token in zip(pieces, [*tokens, b""], strict=True))


def check_literal_overflow(body: bytes, inputs: list[Tensor], values_of: Any) -> None:
    """Raise GatewayError 400 for an input whose JSON holds a number literal beyond its datatype.

    Only called when a floating-point input holds an infinity (rare): the body is read again
    with exact decimals (stdlib json), so `Infinity` (a value) and `1e309` (an overflow) differ.
    `values_of(document, name)` returns the JSON values of input `name` in the parsed body.
    """
    suspects = [t for t in inputs if t.datatype in FLOAT_DATATYPES and np.isinf(t.array).any()]
    if not suspects:
        return
    document = json.loads(body, parse_float=Decimal)
    for tensor in suspects:
        for value in _numbers(values_of(document, tensor.name)):
            if _overflows(value, tensor.array.dtype):
                shown = f"{value:g}" if isinstance(value, Decimal) else value  # 1e+309, as numpy
                raise GatewayError(
                    400,
                    f"input '{tensor.name}': value {shown} is out of range for {tensor.datatype}",
                )


def _overflows(value: Any, dtype: np.dtype) -> bool:
    """A finite literal that is infinite once stored in `dtype` (a token is no literal)."""
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        return False
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond any double
        return True
    with np.errstate(over="ignore"):
        return bool(np.isinf(np.asarray(number).astype(dtype)))


def _numbers(values: Any) -> Iterator[Any]:
    if isinstance(values, list):
        for item in values:
            yield from _numbers(item)
    else:
        yield values

"""Tensors as the gateway handles them: a name, a Triton datatype and a numpy array."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype("object"),
}
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})


class TensorError(ValueError):
    """A client sent a tensor that cannot be what it claims to be (-> 400)."""


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    array: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


def tensor_from_values(
    name: str, datatype: str, values: object, shape: list[int] | None = None
) -> Tensor:
    """Build a tensor from JSON values (nested or flat with `shape`), checking type and size."""
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise TensorError(f"input '{name}': unknown datatype '{datatype}'")
    try:
        if datatype == "BYTES":
            array = np.array(values, dtype=object)
            array = np.vectorize(_to_bytes, otypes=[object])(array) if array.size else array
        else:
            try:
                array = np.asarray(values)
            except ValueError:
                array = np.empty(0, dtype=object)
            if array.dtype == object or array.dtype.kind in "USV":
                raise TensorError(f"input '{name}': values must be numbers in a rectangular array")
            if (
                dtype.kind in "iub"
                and array.size
                and array.dtype.kind == "f"
                and (not np.all(np.isfinite(array)) or np.any(array != np.round(array)))
            ):
                raise TensorError(f"input '{name}': {datatype} needs integer values")
            with np.errstate(over="ignore", invalid="ignore"):
                converted = array.astype(dtype)
            if dtype.kind in "iu" and array.size and not np.array_equal(converted, array):
                raise TensorError(f"input '{name}': values out of range for {datatype}")
            if dtype.kind == "f" and np.isinf(converted).any():  # one pass when all is well
                _check_float_range(name, datatype, array, converted)
            array = converted
        if shape is not None:
            if any(not isinstance(d, int) or d < 0 for d in shape):
                raise TensorError(f"input '{name}': shape {shape} must be non-negative integers")
            if int(np.prod(shape)) != array.size:
                raise TensorError(
                    f"input '{name}': {array.size} values do not fill shape {list(shape)}"
                )
            array = array.reshape(shape)
    except TensorError:
        raise
    except (ValueError, TypeError, OverflowError) as error:
        raise TensorError(f"input '{name}': {error}") from None
    return Tensor(name, datatype, np.ascontiguousarray(array))


def _check_float_range(name: str, datatype: str, given: np.ndarray, converted: np.ndarray) -> None:
    """A finite value that becomes infinite in `datatype` (e.g. 1e39 as FP32) is refused."""
    overflowed = np.isinf(converted) & np.isfinite(given)
    if overflowed.any():
        value = given[overflowed].ravel()[0]
        raise TensorError(f"input '{name}': value {value} is out of range for {datatype}")


def tensor_from_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> Tensor:
    """A tensor from Triton's raw binary form (BYTES: 4-byte little-endian length per item)."""
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise TensorError(f"input '{name}': unknown datatype '{datatype}'")
    if any(d < 0 for d in shape):
        raise TensorError(f"input '{name}': shape {shape} must be non-negative")
    count = int(np.prod(shape))
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise TensorError(f"input '{name}': truncated BYTES element")
            (length,) = struct.unpack_from("<I", raw, offset)
            if offset + 4 + length > len(raw):
                raise TensorError(f"input '{name}': truncated BYTES element")
            items.append(raw[offset + 4 : offset + 4 + length])
            offset += 4 + length
        if len(items) != count:
            raise TensorError(f"input '{name}': {len(items)} elements do not fill shape {shape}")
        return Tensor(name, datatype, np.array(items, dtype=object).reshape(shape))
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"input '{name}': {len(raw)} bytes, shape {shape} of {datatype} needs {count * dtype.itemsize}"
        )
    return Tensor(name, datatype, np.frombuffer(raw, dtype=dtype).reshape(shape))


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TensorError("BYTES values must be strings")


def datatype_of(array: np.ndarray) -> str:
    for name, dtype in DTYPES.items():
        if array.dtype == dtype:
            return name
    raise TensorError(f"unsupported dtype {array.dtype}")

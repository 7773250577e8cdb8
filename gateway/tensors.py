"""Tensors as the gateway handles them: a name, a Triton datatype and a numpy array.

Every Triton datatype is held in the numpy dtype of its little-endian bytes; BF16, which numpy
lacks, as its 16-bit patterns (uint16). The messages are gateway-grpc's too (gateway-grpc/tensors.go,
gateway-grpc/kserve.go); tests/conformance pins them for both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import orjson

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
    "BF16": np.dtype("<u2"),  # bit patterns: bfloat16 is the upper half of a float32
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype("object"),
}
FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})  # numpy floats (BF16 aside)
# Datatypes Triton's HTTP API takes only as binary data (src/http_server.cc, ReadDataFromJson).
BINARY_ONLY = frozenset({"FP16", "BF16"})
# An element count above this could overflow a byte count (gateway-grpc checks the same bound).
MAX_ELEMENTS = (2**63 - 1) // 16
# numpy's limit on an array's dimensions (NPY_MAXDIMS, numpy 1.x): a deeper shape is a 400, never
# numpy's ValueError (gateway-grpc checks the same bound). No Triton model has nearly as many.
MAX_RANK = 32


class TensorError(ValueError):
    """A client sent a tensor that cannot be what it claims to be (-> 400)."""


@dataclass(frozen=True)
class Tensor:
    """A named tensor: `datatype` a Triton datatype (a key of DTYPES), `array` in its numpy dtype
    (BF16: uint16 bit patterns; BYTES: an object array of `bytes`). tensor_from_values and
    tensor_from_raw build it in C order and check that the two agree; the class checks nothing."""

    name: str
    datatype: str
    array: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's dimensions, () for a scalar."""
        return tuple(self.array.shape)


def json_refusal(datatype: str, name: str) -> str:
    """Triton's answer to a binary-only datatype sent as JSON values."""
    return (
        f"receiving {datatype} data via JSON is not supported. Please use the binary data "
        f"format for input {name}"
    )


def element_count(where: str, shape: list[int] | tuple[int, ...]) -> int:
    """The number of elements of `shape`; TensorError naming `where` (e.g. "input 'x'") for a
    shape of more than MAX_RANK dimensions, a negative or overflowing one (its dimensions other
    than 0 multiplied: [0, 2**62] is refused too, numpy cannot even hold it empty)."""
    if len(shape) > MAX_RANK:
        shown = ", ".join(str(d) for d in shape[:MAX_RANK])
        raise TensorError(
            f"{where}: shape [{shown}, ...] has {len(shape)} dimensions, more than the "
            f"{MAX_RANK} supported"
        )
    count = spanned = 1  # spanned: the product without zeros, which numpy refuses beyond its size
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise TensorError(f"{where}: shape {list(shape)} must be non-negative")
        count *= d
        spanned *= d or 1
    if spanned > MAX_ELEMENTS:
        raise TensorError(f"{where}: shape {list(shape)} is too large")
    return count


def tensor_from_values(
    name: str,
    datatype: str,
    values: object,
    shape: list[int] | None = None,
    booleans: bool = True,
) -> Tensor:
    """Build a tensor from JSON values (nested, or flat with `shape`), checking type and size.

    Raises TensorError for an unknown or binary-only datatype, values that are not the
    datatype's (fractions for integers, numbers for BOOL, non-strings for BYTES, and, unless
    `booleans` is False because the body holds no `true`/`false`, true or false for numbers),
    values beyond it, or values that do not fill `shape`.
    """
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise TensorError(f"input '{name}': unknown datatype '{datatype}'")
    if datatype == "BF16":
        raise TensorError(json_refusal(datatype, name))
    count = None if shape is None else element_count(f"input '{name}'", shape)
    try:
        if datatype == "BYTES":
            array = _bytes_array(name, values)
        else:
            array = _numbers(name, datatype, values)
            if booleans and datatype != "BOOL" and _holds_booleans(values):
                raise TensorError(f"input '{name}': {datatype} needs numbers, not true or false")
    except TensorError:
        raise
    except (ValueError, TypeError, OverflowError) as error:
        raise TensorError(f"input '{name}': {error}") from None
    if shape is not None:
        if array.size != count:
            raise TensorError(
                f"input '{name}': {array.size} values do not fill shape {list(shape)}"
            )
        array = array.reshape(shape)
    # C order (np.ascontiguousarray would turn a scalar into shape [1])
    return Tensor(name, datatype, np.require(array, requirements="C"))


def _holds_booleans(values: object) -> bool:
    """Whether JSON values hold true or false anywhere (numpy reads [true, 2] as [1, 2]); the
    values are numbers by now, so their JSON holds those words only as booleans."""
    written = orjson.dumps(values)
    return b"true" in written or b"false" in written


def _bytes_array(name: str, values: object) -> np.ndarray:
    array = np.array(values, dtype=object)
    if not array.size:
        return array
    try:
        return np.vectorize(_to_bytes, otypes=[object])(array)
    except TypeError:
        raise TensorError(f"input '{name}': BYTES values must be strings") from None


def _numbers(name: str, datatype: str, values: object) -> np.ndarray:
    """Numbers (or true/false for BOOL) as `datatype`; refuses what Triton's parser refuses."""
    dtype = DTYPES[datatype]
    try:
        array = np.asarray(values)
    except ValueError:
        array = np.empty(0, dtype=object)
    # numpy keeps JSON integers beyond 64 bits as Python ints, in an object array
    if array.dtype == object and array.size and dtype.kind in "iu" and _all_integers(array):
        return _exact_integers(name, datatype, values)  # beyond uint64 or below int64: a 400
    if array.dtype == object and array.size and dtype.kind == "f" and _all_numbers(array):
        array = _as_fp64(name, datatype, array)  # out of range for FP32/FP16 below
    if array.dtype == object or array.dtype.kind in "USV":
        raise TensorError(f"input '{name}': values must be numbers in a rectangular array")
    if datatype == "BOOL" and array.size and array.dtype.kind != "b":
        raise TensorError(f"input '{name}': BOOL needs true or false values")
    if dtype.kind in "iu" and array.size and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise TensorError(f"input '{name}': {datatype} needs integer values")
        array = _exact_integers(name, datatype, values)  # integers beyond int64 read as floats
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    if dtype.kind in "iu" and array.size and not np.array_equal(converted, array):
        raise TensorError(f"input '{name}': values out of range for {datatype}")
    if dtype.kind == "f" and np.isinf(converted).any():  # one pass when all is well
        _check_float_range(name, datatype, array, converted)
    return converted


def _all_integers(array: np.ndarray) -> bool:
    """Whether an object array (numpy's reading of JSON integers beyond 64 bits) holds integers
    alone, rather than rows of unequal length or mixed values."""
    return all(type(value) is int for value in array.ravel())


def _exact_integers(name: str, datatype: str, values: object) -> np.ndarray:
    """Integral values numpy read as floats (JSON `2.0`, or an integer beyond int64 such as a
    UINT64 above 2**63, which would lose its low bits as a float), as exact integers."""
    info = np.iinfo(DTYPES[datatype])
    objects = np.array(values, dtype=object)
    exact = [int(v) for v in objects.ravel()]
    if any(not info.min <= v <= info.max for v in exact):
        raise TensorError(f"input '{name}': values out of range for {datatype}")
    return np.array(exact, dtype=DTYPES[datatype]).reshape(objects.shape)


def _all_numbers(array: np.ndarray) -> bool:
    """Whether an object array holds ints and floats alone (not rows of unequal length)."""
    return all(type(value) in (int, float) for value in array.ravel())


def _as_fp64(name: str, datatype: str, array: np.ndarray) -> np.ndarray:
    """Python ints and floats as FP64 values; an integer beyond FP64 too (over ~1.8e308) is
    refused as out of range for `datatype`."""
    try:
        return np.array([float(v) for v in array.ravel()]).reshape(array.shape)
    except OverflowError:
        raise TensorError(f"input '{name}': values out of range for {datatype}") from None


def _check_float_range(name: str, datatype: str, given: np.ndarray, converted: np.ndarray) -> None:
    """A finite value that becomes infinite in `datatype` (e.g. 1e39 as FP32) is refused."""
    overflowed = np.isinf(converted) & np.isfinite(given)
    if overflowed.any():
        value = given[overflowed].ravel()[0]
        raise TensorError(f"input '{name}': value {value} is out of range for {datatype}")


def tensor_from_raw(
    name: str, datatype: str, shape: list[int], raw: bytes, role: str = "input"
) -> Tensor:
    """A tensor from Triton's raw binary form (BYTES: 4-byte little-endian length per item).

    Raises TensorError naming the tensor as `role` ("input", or "output" for Triton's answers)
    for an unknown datatype, a bad shape, or bytes that do not fill the shape.
    """
    where = f"{role} '{name}'"
    count = element_count(where, shape)
    if datatype == "BYTES":
        return Tensor(name, datatype, _bytes_items(where, shape, count, raw))
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise TensorError(f"{where}: unknown datatype '{datatype}'")
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"{where}: {len(raw)} bytes, shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize}"
        )
    return Tensor(name, datatype, np.frombuffer(raw, dtype=dtype).reshape(shape))


def _bytes_items(where: str, shape: list[int], count: int, raw: bytes) -> np.ndarray:
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise TensorError(f"{where}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + length > len(raw):
            raise TensorError(f"{where}: truncated BYTES element")
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if len(items) != count:
        raise TensorError(f"{where}: {len(items)} elements do not fill shape {list(shape)}")
    return np.array(items, dtype=object).reshape(shape)


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError("BYTES values must be strings")


def as_floats(tensor: Tensor) -> np.ndarray:
    """A floating-point tensor's values as numpy floats: BF16's bit patterns widened to float32
    (same shape), FP16/FP32/FP64 the array itself."""
    if tensor.datatype == "BF16":
        return (tensor.array.astype("<u4") << 16).view("<f4")
    return tensor.array

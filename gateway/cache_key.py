"""The cache key: a 128-bit BLAKE2b over everything that determines a model's answer.

Model name and fingerprint (sha256 of the model file, or the version where a model has none),
then each input's name, datatype, shape and little-endian bytes in name order, then the requested
outputs in name order. Every field is length-prefixed so no two requests can collide by
concatenation. The same tensor sent as nested JSON, flat JSON with a shape, or raw gRPC bytes gives
the same key.

A row key (per-row cache, docs/cache.md) is the same digest over one row of each input (its shape
without the batch axis), after a leading `row` field, under the prefix `row:`: a row never shares
a key with a whole request, and the same row gives the same key in any batch, position or wire form.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

import numpy as np

from gateway.tensors import Tensor

# Keys BLAKE2b (a tag every BLAKE2b offers, unlike personalization); gateway-grpc/cache_key.go uses it too.
KEY_TAG = b"tsgateway-v2"


def cache_key(
    model: str, fingerprint: str, inputs: Sequence[Tensor], outputs: Iterable[str] = ()
) -> str:
    digest = hashlib.blake2b(digest_size=16, key=KEY_TAG)
    _tensors(digest, model, fingerprint, inputs, outputs)
    return f"pred:{model}:{digest.hexdigest()}"


def row_keys(
    model: str, fingerprint: str, inputs: Sequence[Tensor], outputs: Iterable[str] = ()
) -> list[str]:
    """One key per row of a batched request: `row:<model>:<32 hex digits>`, in row order.

    `inputs` all have the batch axis first (shape `[batch, ...]`, as validated for a model with
    max_batch_size > 0); row i's key covers row i of every input (name, datatype, row shape
    `shape[1:]`, row bytes) and the requested outputs.
    """
    outputs = tuple(outputs)
    keys = []
    for row in range(inputs[0].shape[0]):
        digest = hashlib.blake2b(digest_size=16, key=KEY_TAG)
        _field(digest, b"row")
        rows = [Tensor(t.name, t.datatype, t.array[row, ...]) for t in inputs]
        _tensors(digest, model, fingerprint, rows, outputs)
        keys.append(f"row:{model}:{digest.hexdigest()}")
    return keys


def _tensors(
    digest: hashlib._Hash,
    model: str,
    fingerprint: str,
    inputs: Sequence[Tensor],
    outputs: Iterable[str],
) -> None:
    _field(digest, model.encode())
    _field(digest, fingerprint.encode())
    for tensor in sorted(inputs, key=lambda t: t.name):
        _field(digest, tensor.name.encode())
        _field(digest, tensor.datatype.encode())
        _field(digest, struct.pack(f"<{len(tensor.shape)}q", *tensor.shape))
        _field(digest, canonical_bytes(tensor))
    for name in sorted(set(outputs)):
        _field(digest, b"out:" + name.encode())


def canonical_bytes(tensor: Tensor) -> bytes:
    """Raw little-endian, C-order bytes; BYTES tensors as 4-byte length-prefixed items."""
    if tensor.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(item)) + item for item in tensor.array.ravel())
    array = tensor.array
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array).tobytes()


def _field(digest: hashlib._Hash, data: bytes) -> None:
    digest.update(struct.pack("<Q", len(data)))
    digest.update(data)

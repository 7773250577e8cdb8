"""Compact binary form of a model's outputs, as stored in Redis.

Layout: 4-byte little-endian header length, an orjson header
`[[name, datatype, shape, nbytes], ...]`, then each output's canonical bytes in header order.
"""

from __future__ import annotations

import struct

import orjson

from gateway.cache_key import canonical_bytes
from gateway.tensors import Tensor, tensor_from_raw


def encode_outputs(outputs: dict[str, Tensor]) -> bytes:
    header, blobs = [], []
    for name, tensor in outputs.items():
        blob = canonical_bytes(tensor)
        header.append([name, tensor.datatype, list(tensor.shape), len(blob)])
        blobs.append(blob)
    head = orjson.dumps(header)
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def decode_outputs(data: bytes) -> dict[str, Tensor]:
    """The outputs of a value either gateway wrote; ValueError for anything else in its place."""
    try:
        (head_len,) = struct.unpack_from("<I", data)
        offset = 4 + head_len
        outputs = {}
        for name, datatype, shape, nbytes in orjson.loads(data[4:offset]):
            blob = data[offset : offset + nbytes]
            offset += nbytes
            outputs[name] = tensor_from_raw(name, datatype, shape, blob, "output")
    except (TypeError, struct.error) as error:  # a header of another shape; too short for one
        raise ValueError(f"cached value is malformed: {error}") from None
    if offset != len(data):
        raise ValueError("cached value is truncated or has trailing bytes")
    return outputs

"""Compact binary form of a model's outputs, as stored in Redis.

Layout: 4-byte little-endian header length, an orjson header
`[[name, datatype, shape, nbytes], ...]`, then each output's canonical bytes in header order.
"""

from __future__ import annotations

import struct

import numpy as np
import orjson

from gateway.cache_key import canonical_bytes
from gateway.tensors import DTYPES, Tensor


def encode_outputs(outputs: dict[str, Tensor]) -> bytes:
    header, blobs = [], []
    for name, tensor in outputs.items():
        blob = canonical_bytes(tensor)
        header.append([name, tensor.datatype, list(tensor.shape), len(blob)])
        blobs.append(blob)
    head = orjson.dumps(header)
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def decode_outputs(data: bytes) -> dict[str, Tensor]:
    (head_len,) = struct.unpack_from("<I", data)
    offset = 4 + head_len
    outputs = {}
    for name, datatype, shape, nbytes in orjson.loads(data[4:offset]):
        blob = data[offset : offset + nbytes]
        offset += nbytes
        if datatype == "BYTES":
            array = np.array(_split_bytes(blob), dtype=object).reshape(shape)
        else:
            array = np.frombuffer(blob, dtype=DTYPES[datatype]).reshape(shape)
        outputs[name] = Tensor(name, datatype, array)
    if offset != len(data):
        raise ValueError("cached value is truncated or has trailing bytes")
    return outputs


def _split_bytes(blob: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(blob):
        (length,) = struct.unpack_from("<I", blob, offset)
        items.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return items

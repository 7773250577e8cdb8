"""Cached values decode to exactly the tensors that were stored."""

import struct

import numpy as np
import pytest

from gateway.codec import decode_outputs, encode_outputs
from gateway.tensors import Tensor


def test_numeric_and_bytes_outputs_round_trip_byte_for_byte():
    outputs = {
        "logits": Tensor(
            "logits", "FP32", np.random.default_rng(0).random((3, 10), dtype=np.float32)
        ),
        "half": Tensor("half", "FP16", np.ones((2, 2), dtype=np.float16)),
        "ids": Tensor("ids", "INT64", np.arange(6).reshape(2, 3)),
        "labels": Tensor("labels", "BYTES", np.array([[b"seven"], [b""]], dtype=object)),
    }
    decoded = decode_outputs(encode_outputs(outputs))
    assert list(decoded) == list(outputs)
    for name, tensor in outputs.items():
        assert decoded[name].datatype == tensor.datatype
        assert decoded[name].shape == tensor.shape
        assert decoded[name].array.tobytes() == tensor.array.tobytes() or name == "labels"
    assert decoded["labels"].array.tolist() == [[b"seven"], [b""]]


def test_a_truncated_value_is_refused():
    data = encode_outputs({"x": Tensor("x", "FP32", np.ones(4, np.float32))})
    with pytest.raises(ValueError):
        decode_outputs(data[:-2])


@pytest.mark.parametrize(
    "header",
    [b'[["x","FP32",null,4]]', b'[["x","FP32",[1],"4"]]', b'[["x","FP32"]]', b'{"x":1}', b"[1]"],
)
def test_a_value_that_is_not_an_encoding_is_refused_with_value_error(header):
    with pytest.raises(ValueError):
        decode_outputs(struct.pack("<I", len(header)) + header + b"\0" * 4)


def test_a_value_too_short_for_its_length_is_refused_with_value_error():
    with pytest.raises(ValueError):
        decode_outputs(b"\x01")


def test_a_scalar_output_round_trips():
    scalar = Tensor("score", "FP32", np.array(0.5, dtype=np.float32))
    assert decode_outputs(encode_outputs({"score": scalar}))["score"].shape == ()

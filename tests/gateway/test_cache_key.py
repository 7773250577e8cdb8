"""The cache key is canonical: equal tensors give equal keys, anything that changes the answer differs."""

import numpy as np

from gateway.cache_key import cache_key
from gateway.kserve import V2InferRequest, infer_call
from gateway.tensors import Tensor, tensor_from_values

IMAGE = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8) / 64


def key_of(*tensors, model="digits", fingerprint="abc", outputs=()):
    return cache_key(model, fingerprint, list(tensors), outputs)


def test_nested_json_flat_json_and_raw_bytes_give_the_same_key():
    nested = tensor_from_values("image", "FP32", IMAGE.tolist())
    flat = tensor_from_values("image", "FP32", IMAGE.ravel().tolist(), [1, 1, 8, 8])
    raw = Tensor("image", "FP32", np.frombuffer(IMAGE.tobytes(), dtype="<f4").reshape(1, 1, 8, 8))
    big_endian = Tensor("image", "FP32", IMAGE.astype(">f4"))
    v2 = V2InferRequest(
        inputs=[
            {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": IMAGE.tolist()}
        ]
    )
    v2_json = infer_call(v2, memoryview(b"")).inputs[0]
    v2_binary = infer_call(
        V2InferRequest(
            inputs=[
                {
                    "name": "image",
                    "shape": [1, 1, 8, 8],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 256},
                }
            ]
        ),
        memoryview(IMAGE.tobytes()),
    ).inputs[0]
    tensors = (nested, flat, raw, big_endian, v2_json, v2_binary)
    assert len({key_of(t) for t in tensors}) == 1


def test_input_order_and_output_order_do_not_matter():
    a, b = Tensor("a", "INT64", np.array([[1]])), Tensor("b", "INT64", np.array([[2]]))
    assert key_of(a, b, outputs=["x", "y"]) == key_of(b, a, outputs=["y", "x"])


def test_another_datatype_shape_fingerprint_model_or_output_gives_another_key():
    base = Tensor("image", "FP32", IMAGE)
    keys = {
        key_of(base),
        key_of(Tensor("image", "FP64", IMAGE.astype(np.float64))),
        key_of(Tensor("image", "FP32", IMAGE.reshape(1, 8, 8, 1))),
        key_of(base, fingerprint="def"),
        key_of(base, model="digits_int8"),
        key_of(base, outputs=["logits"]),
        key_of(Tensor("pixels", "FP32", IMAGE)),
    }
    assert len(keys) == 7


def test_same_bytes_under_different_datatypes_differ():
    as_int = Tensor("x", "INT32", np.array([1065353216], dtype=np.int32))
    as_float = Tensor("x", "FP32", np.array([1.0], dtype=np.float32))
    assert as_int.array.tobytes() == as_float.array.tobytes()
    assert key_of(as_int) != key_of(as_float)


def test_bytes_items_are_length_prefixed_so_splits_do_not_collide():
    one = Tensor("text", "BYTES", np.array([b"ab", b"c"], dtype=object))
    two = Tensor("text", "BYTES", np.array([b"a", b"bc"], dtype=object))
    assert key_of(one) != key_of(two)


def test_key_is_128_bits_hex_and_names_the_model():
    key = key_of(Tensor("image", "FP32", IMAGE))
    prefix, model, digest = key.split(":")
    assert (prefix, model) == ("pred", "digits")
    assert len(bytes.fromhex(digest)) == 16

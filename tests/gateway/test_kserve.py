"""KServe v2 HTTP requests and answers, JSON and binary, as Triton 2.51 reads and writes them."""

import json
import struct

import numpy as np
import pytest

from gateway.errors import GatewayError
from gateway.kserve import (
    InferCall,
    V2InferRequest,
    check_json_outputs,
    infer_call,
    infer_response,
    split_body,
)
from gateway.service import Prediction
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TensorInfo

IMAGE = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)


def call_of(body: dict, binary: bytes = b"") -> InferCall:
    return infer_call(V2InferRequest.model_validate(body), memoryview(binary))


def binary_input(name="image", shape=(1, 1, 8, 8), datatype="FP32", size=256) -> dict:
    return {
        "name": name,
        "shape": list(shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


def refused(body: dict, binary: bytes = b"") -> str:
    with pytest.raises(GatewayError) as raised:
        call_of(body, binary)
    assert raised.value.status == 400
    return raised.value.message


def test_the_header_length_splits_json_from_binary_data():
    head = json.dumps({"inputs": [binary_input()]}).encode()
    json_part, binary = split_body(head + IMAGE.tobytes(), str(len(head)))
    assert json_part == head and bytes(binary) == IMAGE.tobytes()
    assert split_body(head, None) == (head, b"")


@pytest.mark.parametrize(
    ("length", "message"),
    [
        ("x", "Unable to parse Inference-Header-Content-Length, got: x"),
        ("-1", "range"),
        ("99", "range"),
    ],
)
def test_a_bad_header_length_is_a_400(length, message):
    with pytest.raises(GatewayError, match=message):
        split_body(b"{}", length)


def test_binary_inputs_take_their_bytes_in_input_order_bytes_length_prefixed():
    text = struct.pack("<I", 2) + b"hi" + struct.pack("<I", 0)
    call = call_of(
        {"inputs": [binary_input(), binary_input("text", (2,), "BYTES", len(text))]},
        IMAGE.tobytes() + text,
    )
    assert np.array_equal(call.inputs[0].array, IMAGE)
    assert call.inputs[1].array.tolist() == [b"hi", b""]


def test_json_and_binary_inputs_mix():
    body = {
        "inputs": [
            binary_input(),
            {"name": "scale", "shape": [1], "datatype": "FP32", "data": [2.0]},
        ]
    }
    call = call_of(body, IMAGE.tobytes())
    assert call.inputs[1].array.tolist() == [2.0]


@pytest.mark.parametrize(
    ("body", "binary", "message"),
    [
        ({"inputs": [binary_input(size=300)]}, IMAGE.tobytes(), "only 256 bytes of binary data"),
        ({"inputs": [binary_input(size=252)]}, IMAGE.tobytes(), "252 bytes, shape [1, 1, 8, 8]"),
        (
            {"inputs": [binary_input(shape=(1, 1, 4, 8), size=128)]},
            IMAGE.tobytes(),
            "128 bytes of binary data follow the last binary input",
        ),
        ({"inputs": [binary_input(size=-1)]}, b"", "Unable to parse 'binary_data_size'"),
        (
            {"inputs": [{**binary_input(), "data": [0.0] * 64}]},
            IMAGE.tobytes(),
            "must set exactly one of 'data' and 'binary_data_size'",
        ),
        (
            {"inputs": [{"name": "image", "shape": [1], "datatype": "FP32"}]},
            b"",
            "must set exactly one",
        ),
        (
            {"inputs": [{**binary_input(), "parameters": {"shared_memory_region": "r"}}]},
            b"",
            "input 'image': parameters ['shared_memory_region'] are not supported",
        ),
    ],
)
def test_malformed_binary_inputs_are_a_400_naming_the_input_or_the_bytes(body, binary, message):
    assert message in refused(body, binary)


def test_fp16_in_json_is_refused_with_tritons_message_and_accepted_as_binary():
    half = {"name": "x", "shape": [1], "datatype": "FP16", "data": [1.0]}
    assert refused({"inputs": [half]}) == (
        "receiving FP16 data via JSON is not supported. Please use the binary data format "
        "for input x"
    )
    binary = binary_input("x", (1,), "FP16", 2)
    assert call_of({"inputs": [binary]}, np.float16(1.0).tobytes()).inputs[0].array[0] == 1.0


def test_priority_and_timeout_are_forwarded_and_binary_data_output_is_the_gateways():
    call = call_of(
        {
            "id": "r1",
            "inputs": [binary_input()],
            "parameters": {"priority": 2, "timeout": 5000, "binary_data_output": True},
        },
        IMAGE.tobytes(),
    )
    assert call.parameters == {"priority": 2, "timeout": 5000}
    assert call.id == "r1" and call.binary("logits")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"sequence_id": 7, "custom": 1},
            "request parameters ['custom', 'sequence_id'] are not supported by the gateway; "
            "supported: ['binary_data_output', 'priority', 'timeout']",
        ),
        ({"priority": -1}, "Unable to parse 'priority'"),
        ({"timeout": "soon"}, "Unable to parse 'timeout'"),
        ({"binary_data_output": 1}, "Unable to parse 'binary_data_output'"),
    ],
)
def test_other_request_parameters_are_a_400_naming_them_never_dropped(parameters, message):
    assert refused({"inputs": [binary_input()], "parameters": parameters}, IMAGE.tobytes()) == (
        message
    )


def test_each_output_may_ask_for_binary_data_over_the_requests_default():
    call = call_of(
        {
            "inputs": [binary_input()],
            "outputs": [
                {"name": "a", "parameters": {"binary_data": True}},
                {"name": "b", "parameters": {"binary_data": False}},
                {"name": "c"},
            ],
            "parameters": {"binary_data_output": True},
        },
        IMAGE.tobytes(),
    )
    assert call.outputs == ["a", "b", "c"]
    assert [call.binary(n) for n in "abc"] == [True, False, True]


def test_classification_outputs_are_refused_naming_the_parameter():
    body = {
        "inputs": [binary_input()],
        "outputs": [{"name": "a", "parameters": {"classification": 3}}],
    }
    assert refused(body, IMAGE.tobytes()) == (
        "output 'a': parameters ['classification'] are not supported by the gateway"
    )


def prediction(**outputs: Tensor) -> Prediction:
    return Prediction("digits", "1", outputs, cache_hit=False)


LOGITS = Tensor("logits", "FP32", np.arange(10, dtype=np.float32).reshape(1, 10))


def test_a_binary_answer_is_the_json_header_then_the_bytes_its_length_in_a_header():
    call = InferCall(id="r1", inputs=[], outputs=None, binary_default=True)
    body, length = infer_response(prediction(logits=LOGITS), call)
    head = (
        b'{"id":"r1","model_name":"digits","model_version":"1","outputs":[{"name":"logits",'
        b'"datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}}]}'
    )
    assert (body, length) == (head + LOGITS.array.tobytes(), len(head))


def test_a_json_answer_has_no_header_length_and_data_inline():
    call = InferCall(id=None, inputs=[], outputs=None)
    body, length = infer_response(prediction(logits=LOGITS), call)
    assert length is None
    assert json.loads(body)["outputs"][0]["data"] == list(range(10))


def test_an_empty_binary_output_has_size_zero_and_no_bytes():
    empty = Tensor("e", "FP32", np.zeros((1, 0), np.float32))
    body, length = infer_response(
        prediction(e=empty), InferCall(id=None, inputs=[], outputs=None, binary_default=True)
    )
    assert length is None  # as Triton: no binary data, no header length
    assert json.loads(body)["outputs"][0]["parameters"] == {"binary_data_size": 0}


def test_fp16_outputs_can_only_be_asked_for_as_binary():
    info = ModelInfo(
        name="half",
        version="1",
        fingerprint="f",
        max_batch_size=0,
        inputs={},
        outputs={"y": TensorInfo("y", "FP16", (1,))},
    )
    check_json_outputs(info, InferCall(id=None, inputs=[], outputs=None, binary_default=True))
    with pytest.raises(GatewayError, match="sending FP16 data via JSON is not supported"):
        check_json_outputs(info, InferCall(id=None, inputs=[], outputs=["y"]))


def test_a_bytes_output_as_binary_data_is_length_prefixed_as_json_strings():
    labels = Tensor("labels", "BYTES", np.array([[b"seven"], [b""]], dtype=object))
    binary = InferCall(id=None, inputs=[], outputs=None, binary_default=True)
    body, length = infer_response(prediction(labels=labels), binary)
    raw = struct.pack("<I", 5) + b"seven" + struct.pack("<I", 0)
    assert body[length:] == raw
    assert json.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 13}
    as_json, _ = infer_response(
        prediction(labels=labels), InferCall(id=None, inputs=[], outputs=None)
    )
    assert json.loads(as_json)["outputs"][0]["data"] == ["seven", ""]

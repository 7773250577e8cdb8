"""Requests at the edges of the protocol, through both front ends against the real tritonserver of
the stack: hostile model names and versions, shapes numpy cannot hold, routes and extensions the
gateway does not serve, gRPC message compression, values in the wrong typed contents field. The
refusals both front ends share are pinned by the conformance corpus (tests/conformance); these
tests show the running processes and tritonclient agree."""

from __future__ import annotations

import json
import re
import socket
import struct
from urllib.parse import urlsplit

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from benchmarks.scrape import scrape
from localstack.processes import wait_until
from tests.conftest import until_hit

pytestmark = pytest.mark.integration

rng = np.random.default_rng()  # fresh entropy: no other test sends these images
DEEP = [1] * 33  # one dimension more than numpy holds
REFUSED_EXTENSIONS = {
    "model_repository",
    "model_repository(unload_dependents)",
    "system_shared_memory",
    "cuda_shared_memory",
    "trace",
    "logging",
    "sequence",
    "classification",
    "parameters",
}


def fresh_image() -> np.ndarray:
    return rng.random((1, 1, 8, 8), dtype=np.float32)


def v2_json(image: np.ndarray) -> dict:
    return {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                        "data": image.ravel().tolist()}]}  # fmt: skip


def stub(address: str) -> service_pb2_grpc.GRPCInferenceServiceStub:
    return service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(address))


def grpc_request(model: str, image: np.ndarray, version: str = "") -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name="image", datatype="FP32", shape=list(image.shape))
    request.raw_input_contents.append(image.tobytes())
    return request


def grpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value


def model_labels(metrics_url: str) -> set[str]:
    """The values of the `model` label of gateway_requests_total."""
    text = httpx.get(metrics_url).text
    return set(re.findall(r'^gateway_requests_total\{[^}]*model="([^"]*)"', text, re.M))


def test_a_nul_in_a_model_name_is_a_404_everywhere_and_never_a_metric_label(stack):
    image, name = fresh_image(), "digits\0" + rng.bytes(8).hex()
    gateway = stack.gateway_url
    answers = [
        httpx.post(f"{gateway}/v2/models/{name.replace(chr(0), '%00')}/infer", json=v2_json(image)),
        httpx.post(f"{gateway}/predict", json={"model": name, "inputs": {"image": image.tolist()}}),
        httpx.get(f"{gateway}/v2/models/{name.replace(chr(0), '%00')}"),
    ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == f"Request for unknown model: '{name}' is not found"
    client = stub(stack.gateway_grpc_url)
    for call, request in (
        (client.ModelInfer, grpc_request(name, image)),
        (client.ModelMetadata, service_pb2.ModelMetadataRequest(name=name)),
        (client.ModelConfig, service_pb2.ModelConfigRequest(name=name)),
    ):
        assert grpc_error(call, request).code() == grpc.StatusCode.NOT_FOUND
    served = {m["name"] for m in httpx.post(f"{stack.triton_http_url}/v2/repository/index").json()}
    for metrics_url in (stack.gateway_metrics_url, stack.local.urls["gateway gRPC metrics"]):
        assert model_labels(metrics_url) <= served | {""}, metrics_url


def test_a_version_with_leading_zeros_is_answered_and_cached_as_tritons_version(stack):
    image = fresh_image()
    url = f"{stack.gateway_url}/v2/models/digits/versions/01/infer"
    first = httpx.post(url, json=v2_json(image))
    assert (first.status_code, first.json()["model_version"]) == (200, "1"), first.text
    plain = f"{stack.gateway_url}/v2/models/digits/versions/1/infer"
    until_hit(lambda: httpx.post(plain, json=v2_json(image)), lambda r: r.headers["X-Cache"])
    response, call = stub(stack.gateway_grpc_url).ModelInfer.with_call(
        grpc_request("digits", image, "001"), timeout=30
    )
    assert response.model_version == "1"
    assert dict(call.trailing_metadata())["x-cache"] == "HIT"
    triton = stub(stack.triton_grpc_url).ModelInfer(grpc_request("digits", image, "01"))
    assert triton.model_version == response.model_version


def binary_body(name: str, datatype: str, raw: bytes) -> tuple[bytes, dict[str, str]]:
    entry = {"name": name, "shape": DEEP, "datatype": datatype,
             "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    head = json.dumps({"inputs": [entry]}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head))}


def test_a_shape_of_33_dimensions_is_a_400_naming_the_input_in_every_form(stack):
    gateway, shown = stack.gateway_url, ", ".join(["1"] * 32)
    for model, name, datatype, value, raw in (
        ("digits", "image", "FP32", 0.0, b"\0" * 4),
        ("minilm_text", "text", "BYTES", "a", struct.pack("<I", 1) + b"a"),
    ):
        url = f"{gateway}/v2/models/{model}/infer"
        entry = {"name": name, "shape": DEEP, "datatype": datatype, "data": [value]}
        body, headers = binary_body(name, datatype, raw)
        for answer in (
            httpx.post(url, json={"inputs": [entry]}),
            httpx.post(url, content=body, headers=headers),
        ):
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == (
                f"input '{name}': shape [{shown}, ...] has 33 dimensions, more than the 32 supported"
            )
    request = grpc_request("digits", np.zeros(1, np.float32).reshape(1))
    request.inputs[0].shape[:] = DEEP
    error = grpc_error(stub(stack.gateway_grpc_url).ModelInfer, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 33 dimensions" in error.details()


@pytest.mark.parametrize("dimension", [1.0, "1", True], ids=["float", "string", "boolean"])
def test_a_shape_of_anything_but_integers_is_a_400(stack, dimension):
    body = v2_json(fresh_image())
    body["inputs"][0]["shape"][0] = dimension
    answer = httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", json=body)
    assert answer.status_code == 400
    assert "inputs.0.shape.0: Input should be a valid integer" in answer.json()["error"]


def test_a_lone_surrogate_in_json_text_is_named_as_such(stack):
    body = '{"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":["\\ud800"]}]}'
    answer = httpx.post(f"{stack.gateway_url}/v2/models/minilm_text/infer", content=body)
    assert answer.status_code == 400
    assert "lone surrogate" in answer.json()["error"]


@pytest.mark.parametrize("key", ["model_version", "foo"])
def test_predict_refuses_an_unknown_key_naming_it(stack, key):
    payload = {"model": "digits", "inputs": {"image": fresh_image().tolist()}, key: "1"}
    answer = stack.predict(payload)
    assert answer.status_code == 400
    assert f"body.{key}: Extra inputs are not permitted" in answer.json()["error"]


def test_routes_the_gateway_does_not_serve_answer_an_error_tritonclient_decodes(stack):
    client = httpclient.InferenceServerClient(stack.gateway_url.removeprefix("http://"))
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_repository_index()
    assert (raised.value.status(), raised.value.message()) == ("404", "Not Found")
    not_allowed = httpx.delete(f"{stack.gateway_url}/v2")
    assert (not_allowed.status_code, not_allowed.json()) == (405, {"error": "Method Not Allowed"})


def test_server_metadata_lists_only_the_extensions_the_gateway_serves(stack):
    triton = set(httpx.get(f"{stack.triton_http_url}/v2").json()["extensions"])
    http = set(httpx.get(f"{stack.gateway_url}/v2").json()["extensions"])
    served = stub(stack.gateway_grpc_url).ServerMetadata(service_pb2.ServerMetadataRequest())
    assert http == {"schedule_policy", "model_configuration", "binary_tensor_data", "statistics"}
    assert set(served.extensions) == http - {"binary_tensor_data"}
    assert http <= triton and not http & REFUSED_EXTENSIONS


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_grpc_message_compression_is_accepted_as_by_triton(stack, algorithm):
    image = fresh_image()
    answers = []
    for url in (stack.gateway_grpc_url, stack.triton_grpc_url):
        tensor = grpcclient.InferInput("image", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image)
        client = grpcclient.InferenceServerClient(url)
        answers.append(
            client.infer("digits", [tensor], compression_algorithm=algorithm).as_numpy("logits")
        )
    np.testing.assert_array_equal(*answers)


def test_values_in_another_typed_contents_field_are_named_with_the_datatypes_field(stack):
    request = service_pb2.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="image", datatype="FP32", shape=[1, 1, 8, 8])
    tensor.contents.int_contents.extend([0] * 64)
    error = grpc_error(stub(stack.gateway_grpc_url).ModelInfer, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'image': FP32 values go in fp32_contents, not int_contents",
    )


def requests_counted(metrics_url: str, route: str) -> dict[str, float]:
    """{status: count} of gateway_requests_total for `route`, summed over models."""
    counted: dict[str, float] = {}
    for (name, labels), count in scrape(metrics_url).items():
        labels = dict(labels)
        if name == "gateway_requests_total" and labels["route"] == route:
            counted[labels["status"]] = counted.get(labels["status"], 0.0) + count
    return counted


def server_faults(counted: dict[str, float]) -> float:
    return sum(v for status, v in counted.items() if status.startswith("5"))


def assert_counted_as_499(metrics_url: str, route: str, before: dict[str, float]) -> None:
    """The request is counted as 499 (within 30 s: the gateway counts it once it notices) and no
    5xx was counted since `before`."""

    def counted() -> bool:
        return requests_counted(metrics_url, route).get("499", 0) > before.get("499", 0)

    assert wait_until(counted, 30.0, interval_s=0.05), "the client's leaving was never counted"
    assert server_faults(requests_counted(metrics_url, route)) == server_faults(before)


def test_a_client_that_leaves_during_its_body_is_a_499_not_a_gateway_fault(stack):
    route = "/v2/models/{model}/infer"
    before = requests_counted(stack.gateway_metrics_url, route)
    url = urlsplit(stack.gateway_url)
    with socket.create_connection((url.hostname, url.port)) as client:
        client.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                       b'{"inputs":')  # fmt: skip
    assert_counted_as_499(stack.gateway_metrics_url, route, before)


def test_a_grpc_client_whose_own_deadline_passes_is_a_499_not_a_gateway_fault(stack):
    metrics_url = stack.local.urls["gateway gRPC metrics"]
    before = requests_counted(metrics_url, "grpc:ModelInfer")
    request = service_pb2.ModelInferRequest(model_name="minilm")
    ids = rng.integers(1000, 20000, size=(32, 128), dtype=np.int64)  # seconds of work: a miss
    for name, array in (("input_ids", ids), ("attention_mask", np.ones_like(ids))):
        request.inputs.add(name=name, datatype="INT64", shape=list(array.shape))
        request.raw_input_contents.append(array.tobytes())
    with pytest.raises(grpc.RpcError) as raised:
        stub(stack.gateway_grpc_url).ModelInfer(request, timeout=0.25)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert_counted_as_499(metrics_url, "grpc:ModelInfer", before)


def test_the_inputs_that_crash_triton_when_sent_to_it_directly_are_400s_before_triton(stack):
    """Triton 2.51's HTTP front end dies on these (SIGABRT on std::bad_alloc, SIGSEGV): the gateway
    refuses them without forwarding anything, and Triton answers the next request."""
    huge_shape = {"inputs": [{"name": "image", "shape": [1099511627776, 1, 8, 8],
                              "datatype": "FP32", "data": [0.0] * 64}]}  # fmt: skip
    depth = 100_000
    deep_data = (
        b'{"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32","data":'
        + b"[" * depth
        + b"0"
        + b"]" * depth
        + b"}]}"
    )
    before = stack.triton_inferences()
    for answer in (
        httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", json=huge_shape, timeout=30),
        httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", content=deep_data, timeout=30),
    ):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]
    assert stack.local.processes.running("triton") and stack.triton_inferences() == before
    image = fresh_image()
    assert httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", json=v2_json(image)).is_success

"""The KServe v2 HTTP protocol through the gateway, checked against the real tritonserver the stack
runs (the same models): binary tensor data byte for byte, content codings, request parameters,
statistics, one cache key for every form. Clients (tritonclient.http, curl, perf_analyzer) are
the interoperability matrix's: tests/gateway/test_interoperability.py."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import numpy as np
import pytest
import redis
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.conftest import until_hit

pytestmark = pytest.mark.integration

rng = np.random.default_rng()  # fresh entropy: no other test sends these images


def fresh_image(batch: int = 1) -> np.ndarray:
    return rng.random((batch, 1, 8, 8), dtype=np.float32)


def address(url: str) -> str:
    return url.removeprefix("http://")


def structure(value):
    """The keys and value types of a JSON document (statistics change between two reads)."""
    if isinstance(value, dict):
        return {k: structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [structure(v) for v in value[:1]]
    return type(value).__name__


def test_statistics_are_tritons_in_its_http_form(stack):
    triton = httpclient.InferenceServerClient(address(stack.triton_http_url))
    gateway = httpclient.InferenceServerClient(address(stack.gateway_url))
    stats = gateway.get_inference_statistics("digits")
    assert structure(stats) == structure(triton.get_inference_statistics("digits"))
    assert isinstance(stats["model_stats"][0]["inference_count"], int)
    every = gateway.get_inference_statistics()["model_stats"]
    assert {m["name"] for m in every} == {
        m["name"] for m in triton.get_inference_statistics()["model_stats"]
    }


def test_an_unknown_model_is_a_404_on_every_metadata_route(stack):
    for route in ("", "/config", "/stats", "/versions/1"):
        response = httpx.get(f"{stack.gateway_url}/v2/models/no_such_model{route}")
        assert response.status_code in (400, 404), (route, response.text)
        assert "no_such_model" in response.json()["error"]


def binary_request(image: np.ndarray, request_id: str = "") -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {
            **({"id": request_id} if request_id else {}),
            "inputs": [
                {
                    "name": "image",
                    "shape": list(image.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": image.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return head + image.tobytes(), {"Inference-Header-Content-Length": str(len(head))}


CODINGS = {
    "plain": (None, None),
    "gzip body, gzip answer": ("gzip", "gzip"),
    "deflate body, deflate answer": ("deflate", "deflate"),
    "plain body, weighted answer": (None, "deflate;q=0.5, gzip"),
}


@pytest.mark.parametrize(("content_encoding", "accept"), CODINGS.values(), ids=CODINGS.keys())
def test_a_binary_answer_is_byte_for_byte_tritons(stack, content_encoding, accept):
    body, headers = binary_request(fresh_image(3), request_id="b-1")
    if content_encoding:
        headers["Content-Encoding"] = content_encoding
        body = gzip.compress(body) if content_encoding == "gzip" else zlib.compress(body)
    headers["Accept-Encoding"] = accept or "identity"
    answers = [
        raw_post(f"{url}/v2/models/digits/infer", body, headers)
        for url in (stack.triton_http_url, stack.gateway_url, stack.gateway_url)
    ]
    (_, triton_headers, triton_body), miss, hit = answers
    assert (miss[1]["X-Cache"], hit[1]["X-Cache"]) == ("MISS", "HIT")
    for status, answer_headers, answer_body in (miss, hit):
        assert status == 200
        assert answer_body == triton_body  # as sent: compressed bytes when compressed
        for header in ("Inference-Header-Content-Length", "Content-Type", "Content-Encoding"):
            assert answer_headers.get(header) == triton_headers.get(header)


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
    """Status, headers and the body as it came over the wire (httpx would inflate it)."""
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code, response.headers, b"".join(response.iter_raw())


def test_json_binary_http_and_grpc_forms_of_one_tensor_share_one_cache_entry(stack):
    image = fresh_image()
    before = stack.triton_inferences()
    as_json = httpx.post(
        f"{stack.gateway_url}/v2/models/digits/infer",
        json={
            "inputs": [
                {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": image.tolist()}
            ]
        },
    )
    body, headers = binary_request(image)
    # the JSON answer is stored just after it is sent: ask until the store has landed
    as_binary = until_hit(
        lambda: httpx.post(
            f"{stack.gateway_url}/v2/models/digits/infer", content=body, headers=headers
        ),
        lambda answer: answer.headers["X-Cache"],
    )
    grpc_input = grpcclient.InferInput("image", [1, 1, 8, 8], "FP32")
    grpc_input.set_data_from_numpy(image)
    via_grpc = grpcclient.InferenceServerClient(stack.gateway_grpc_url).infer(
        "digits", [grpc_input]
    )
    assert (as_json.headers["X-Cache"], as_binary.headers["X-Cache"]) == ("MISS", "HIT")
    logits = np.frombuffer(as_binary.content[int(headers_length(as_binary)) :], np.float32)
    assert np.array_equal(logits, np.array(as_json.json()["outputs"][0]["data"], np.float32))
    assert np.array_equal(via_grpc.as_numpy("logits").ravel(), logits)
    assert stack.triton_inferences_since(before) == 1


def headers_length(response: httpx.Response) -> str:
    return response.headers["Inference-Header-Content-Length"]


def test_bytes_tensors_travel_as_length_prefixed_binary_data(stack):
    text = np.array([["Triton batches requests."]], dtype=object)
    answers = []
    for url in (stack.triton_http_url, stack.gateway_url):
        client = httpclient.InferenceServerClient(address(url))
        tensor = httpclient.InferInput("text", [1, 1], "BYTES")
        tensor.set_data_from_numpy(text, binary_data=True)
        answers.append(client.infer("minilm_text", [tensor]).as_numpy("embedding"))
    assert answers[0].shape == (1, 384) and np.allclose(answers[0], answers[1], atol=1e-6)


def post_infer(stack, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/v2/models/digits/infer", json=body, timeout=30, **kwargs
    )


def json_image_body(**extra) -> dict:
    data = fresh_image().ravel().tolist()
    image = {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": data}
    return {"inputs": [image], **extra}


def test_priority_and_timeout_reach_triton_and_other_parameters_are_refused(stack):
    forwarded = post_infer(stack, json_image_body(parameters={"priority": 1, "timeout": 10**6}))
    assert forwarded.status_code == 200, forwarded.text
    cache = redis.Redis(port=stack.redis_port)
    keys = cache.dbsize()
    refused = post_infer(stack, json_image_body(parameters={"sequence_id": 4}))
    assert refused.status_code == 400
    assert "request parameters ['sequence_id'] are not supported" in refused.json()["error"]
    assert cache.dbsize() == keys


def test_an_unsupported_content_coding_is_a_415_and_a_gzip_bomb_a_413(stack):
    refused = httpx.post(
        f"{stack.gateway_url}/predict", content=b"{}", headers={"Content-Encoding": "br"}
    )
    assert refused.status_code == 415 and refused.headers["Accept-Encoding"] == "gzip, deflate"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(64)) + compressor.flush()
    answer = httpx.post(
        f"{stack.gateway_url}/predict", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert len(bomb) < 1 << 20 and answer.status_code == 413


def test_fp16_json_is_refused_with_tritons_own_message(stack):
    body = {
        "inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP16", "data": [0] * 64}]
    }
    answers = [
        httpx.post(f"{url}/v2/models/digits/infer", json=body)
        for url in (stack.triton_http_url, stack.gateway_url)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()


def nan_body(token: str) -> bytes:
    values = ", ".join([token] + ["0.0"] * 63)
    return (
        '{"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", '
        f'"data": [{values}]}}]}}'
    ).encode()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_inputs_and_outputs_are_written_as_triton_writes_them_never_cached(
    stack, token
):
    answers = [
        httpx.post(f"{url}/v2/models/digits/infer", content=nan_body(token))
        for url in (stack.triton_http_url, stack.gateway_url, stack.gateway_url)
    ]
    triton, first, second = answers
    assert triton.status_code == first.status_code == 200
    assert (
        first.content == triton.content and b"NaN" in first.content and b"null" not in first.content
    )
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "MISS")


@pytest.mark.parametrize(("literal", "triton_status"), [("1e39", 200), ("1e309", 500)])
def test_a_json_literal_beyond_fp32_is_a_400_naming_the_input(stack, literal, triton_status):
    """Triton reads 1e39 as FP32 infinity and answers NaNs, and 1e309 is a 500 there (its JSON
    parser refuses it as an internal error); the gateway refuses both as the client's mistake."""
    triton = httpx.post(
        f"{stack.triton_http_url}/v2/models/digits/infer", content=nan_body(literal)
    )
    gateway = httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", content=nan_body(literal))
    assert triton.status_code == triton_status
    assert gateway.status_code == 400
    assert gateway.json()["error"].startswith("input 'image': value 1")
    assert gateway.json()["error"].endswith("is out of range for FP32")

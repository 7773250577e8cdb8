"""The running gateways (the real stack: tritonserver with the demo models, both gateway processes)
refuse the corpus's requests on the demo models as the corpus says, and the corpus's demo models
are the ones Triton serves (fingerprints aside): the corpus is not a world of its own."""

from __future__ import annotations

import base64

import grpc
import httpx
import pytest
import redis
from google.protobuf import json_format
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.conformance.test_gateway import DOCUMENT

pytestmark = pytest.mark.integration

DEMO_MODELS = ("digits", "minilm", "minilm_text", "nope")
REFUSALS = [
    pytest.param(case, request, id=f"{case['name']} [{request['form']}]")
    for case in DOCUMENT["requests"]
    if case["model"] in DEMO_MODELS and case["triton"] is None
    for request in case["requests"]
]


@pytest.mark.parametrize("model", [m for m in DEMO_MODELS if m in DOCUMENT["models"]])
def test_the_corpus_models_are_the_demo_models_as_triton_serves_them(stack, model):
    corpus = DOCUMENT["models"][model]
    metadata = httpx.get(f"{stack.triton_http_url}/v2/models/{model}").json()
    config = httpx.get(f"{stack.triton_http_url}/v2/models/{model}/config").json()
    for field in ("inputs", "outputs"):
        served = [(t["name"], t["datatype"], t["shape"]) for t in metadata[field]]
        written = [
            (t["name"], t["datatype"], [int(d) for d in t["shape"]])
            for t in corpus["metadata"][field]
        ]
        assert written == served
    assert corpus["config"]["max_batch_size"] == config["max_batch_size"]
    checked = ("valid_range:", "allow_empty:", "max_length:")
    assert {
        k: v for k, v in corpus["config"].get("parameters", {}).items() if k.startswith(checked)
    } == {k: v for k, v in config["parameters"].items() if k.startswith(checked)}


def send(stack, request: dict) -> tuple[str, str]:
    """(status or code, message) of one corpus request to the running gateway it is for."""
    if "path" in request:
        body = (
            base64.b64decode(request["body_base64"])
            if "body_base64" in request
            else request["body"]
        )
        answer = httpx.post(
            stack.gateway_url + request["path"],
            content=body,
            headers=request["headers"],
            timeout=30,
        )
        return str(answer.status_code), answer.json().get("error", "")
    message = json_format.ParseDict(request["request"], service_pb2.ModelInferRequest())
    with grpc.insecure_channel(stack.gateway_grpc_url) as channel:
        try:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(message, timeout=30)
        except grpc.RpcError as error:
            return error.code().name, error.details()
    return "OK", ""


@pytest.mark.parametrize(("case", "request_"), REFUSALS)
def test_the_running_gateways_refuse_as_the_corpus_says(stack, case, request_):
    cache = redis.Redis(port=stack.redis_port)
    keys = cache.dbsize()
    expect = request_["expect"]
    wanted = (
        (str(expect["status"]), expect["message"])
        if "path" in request_
        else (expect["code"], expect["message"])
    )
    assert send(stack, request_) == wanted
    assert cache.dbsize() == keys


def test_the_replayed_refusals_cover_both_front_ends():
    assert {"path" in r.values[1] for r in REFUSALS} == {True, False} and len(REFUSALS) >= 40

"""The gateway against real Redis and real Triton: protocols, cache sharing, coalescing, faults."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import time

import grpc
import httpx
import numpy as np
import pytest
import redis
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from benchmarks.scrape import scrape, value
from conversion.fingerprint import version_fingerprint
from conversion.triton_config import read_config, write_config
from tests.conftest import start_stack, until_hit

pytestmark = pytest.mark.integration

rng = np.random.default_rng(1234)


def fresh_image(batch: int = 1) -> np.ndarray:
    """An input no other test sent, so the first answer is a cache miss."""
    return rng.random((batch, 1, 8, 8), dtype=np.float32)


def payload(image: np.ndarray) -> dict:
    return {"model": "digits", "inputs": {"image": image.tolist()}}


def grpc_input(image: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", list(image.shape), "FP32")
    tensor.set_data_from_numpy(image)
    return tensor


def test_an_http_and_a_grpc_request_with_the_same_tensor_share_one_cache_entry(stack):
    image = fresh_image(2)
    before = stack.triton_inferences()
    http = httpx.post(
        f"{stack.gateway_url}/v2/models/digits/infer",
        json={
            "inputs": [
                {
                    "name": "image",
                    "shape": [2, 1, 8, 8],
                    "datatype": "FP32",
                    "data": image.ravel().tolist(),
                }
            ]
        },
    )
    simple = until_hit(lambda: stack.predict(payload(image)), lambda r: r.headers["X-Cache"])
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    via_grpc = client.infer("digits", [grpc_input(image)]).as_numpy("logits")

    assert http.status_code == 200 and http.headers["X-Cache"] == "MISS"
    expected = np.array(http.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 10)
    assert np.array_equal(via_grpc, expected)
    assert np.array_equal(np.array(simple.json()["outputs"]["logits"], dtype=np.float32), expected)
    assert stack.triton_inferences_since(before) == 2  # one request of batch 2, once


def test_identical_concurrent_misses_make_one_triton_call(stack):
    body = payload(fresh_image())
    before_triton = stack.triton_inferences()

    async def burst():
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/predict", json=body) for _ in range(32)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert stack.triton_inferences_since(before_triton) == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "digits", "inputs": {"image": [[[0.0] * 8] * 8]}}, 400, "shape"),
        ({"model": "digits", "inputs": {"pixels": [[[[0.0] * 8] * 8]]}}, 400, "no input"),
        ({"model": "digits", "inputs": {}}, 400, "needs input"),
        ({"model": "digits", "inputs": {"image": "zero"}}, 400, "numbers"),
        ({"model": "digits", "inputs": {"image": [[[[0.0] * 8] * 8]] * 65}}, 400, "batch size"),
        (
            {"model": "digits", "inputs": {"image": [[[[0.0] * 8] * 8]]}, "outputs": ["probs"]},
            400,
            "no output",
        ),
        (
            {"model": "no_such_model", "inputs": {"image": [[[[0.0] * 8] * 8]]}},
            404,
            "unknown model",
        ),
        ({"inputs": {}}, 400, "model"),
    ],
)
def test_client_mistakes_get_a_clear_4xx_and_nothing_is_cached(stack, body, status, message):
    cache = redis.Redis(port=stack.redis_port)
    keys_before = cache.dbsize()
    response = stack.predict(body)
    assert response.status_code == status
    assert message in response.text
    assert cache.dbsize() == keys_before


WAYS_OUT = ("binary data", "tritonclient.http", "gRPC", "GATEWAY_MAX_BODY_BYTES")


def test_a_body_over_the_limit_gets_a_413_naming_the_ways_past_it(stack):
    response = httpx.post(f"{stack.gateway_url}/predict", content=b"[" * (9 << 20), timeout=30)
    assert response.status_code == 413
    message = response.json()["error"]
    assert message.startswith("request body larger than 8388608 bytes (GATEWAY_MAX_BODY_BYTES)")
    assert all(way in message for way in WAYS_OUT)
    assert f"port {stack.ports.gateway_grpc}" in message


def test_a_batch_too_large_as_json_passes_as_binary_data_and_over_grpc(make_stack):
    """Issue 15: the ways the 413 names work: a batch over the limit as JSON numbers fits as
    binary data (about 4x smaller) and as raw gRPC bytes."""
    stack = make_stack(GATEWAY_MAX_BODY_BYTES="40000")
    images = fresh_image(64)
    as_json = {
        "inputs": [
            {"name": "image", "shape": [64, 1, 8, 8], "datatype": "FP32", "data": images.tolist()}
        ]
    }
    refused = httpx.post(f"{stack.gateway_url}/v2/models/digits/infer", json=as_json, timeout=30)
    assert refused.status_code == 413, refused.text
    assert all(way in refused.json()["error"] for way in WAYS_OUT)
    json_size = len(refused.request.content)
    assert json_size > 4 * images.nbytes  # "about 4x smaller" as binary data

    http = httpclient.InferenceServerClient(stack.gateway_url.removeprefix("http://"))
    binary = httpclient.InferInput("image", list(images.shape), "FP32")
    binary.set_data_from_numpy(images, binary_data=True)
    via_binary = http.infer("digits", [binary]).as_numpy("logits")
    via_grpc = grpcclient.InferenceServerClient(stack.gateway_grpc_url).infer(
        "digits", [grpc_input(images)]
    )
    assert via_binary.shape == (64, 10)
    assert np.array_equal(via_grpc.as_numpy("logits"), via_binary)


def test_malformed_grpc_requests_get_proper_status_codes(stack):
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    wrong_shape = grpcclient.InferInput("image", [1, 64], "FP32")
    wrong_shape.set_data_from_numpy(np.zeros((1, 64), np.float32))
    wrong_type = grpcclient.InferInput("image", [1, 1, 8, 8], "FP64")
    wrong_type.set_data_from_numpy(np.zeros((1, 1, 8, 8), np.float64))
    for model, inputs, code in [
        ("digits", [wrong_shape], "INVALID_ARGUMENT"),
        ("digits", [wrong_type], "INVALID_ARGUMENT"),
        ("nope", [grpc_input(fresh_image())], "NOT_FOUND"),
    ]:
        with pytest.raises(InferenceServerException) as raised:
            client.infer(model, inputs)
        assert code in str(raised.value.status())


def test_api_keys_are_enforced_on_http_and_grpc(make_stack):
    stack = make_stack(GATEWAY_API_KEYS="s3cret,other")
    body = payload(fresh_image())
    assert stack.predict(body).status_code == 401
    assert stack.predict(body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert stack.predict(body, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert httpx.get(f"{stack.gateway_url}/healthz").status_code == 200  # probes stay open
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
        client.infer("digits", [grpc_input(fresh_image())])
    result = client.infer("digits", [grpc_input(fresh_image())], headers={"x-api-key": "other"})
    assert result.as_numpy("logits").shape == (1, 10)


def test_a_gateway_pinned_to_a_cpu_runs_every_thread_there_and_still_answers(make_stack):
    cpu = max(os.sched_getaffinity(0))
    stack = make_stack(GATEWAY_CPUS=str(cpu))
    assert stack.predict(payload(fresh_image())).status_code == 200
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    assert client.infer("digits", [grpc_input(fresh_image())]).as_numpy("logits").shape == (1, 10)
    pid = stack.local.processes.pid("gateway")
    allowed = {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}
    assert allowed == {frozenset({cpu})}


def test_with_two_workers_every_scrape_counts_the_requests_of_both(make_stack):
    stack = make_stack(GATEWAY_WORKERS="2")
    for _ in range(20):  # a new connection each: the kernel spreads them over the workers
        assert stack.predict(payload(fresh_image())).status_code == 200
    counts = {
        value(
            scrape(stack.gateway_metrics_url),
            "gateway_requests_total",
            route="/predict",
            status="200",
        )
        for _ in range(6)
    }
    assert counts == {20.0}
    assert value(scrape(stack.gateway_metrics_url), "gateway_in_flight_requests") == 0.0


def test_redis_killed_requests_still_succeed_and_caching_resumes_when_it_returns(make_stack):
    stack = make_stack(GATEWAY_REDIS_RETRY_AFTER_S="0.2")
    stack.local.stop_component("redis", signal.SIGKILL)
    body = payload(fresh_image())
    answers = [stack.predict(body) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert {r.headers["X-Cache"] for r in answers} == {"MISS"}

    ready = httpx.get(f"{stack.gateway_url}/readyz")  # uncached answers are still answers
    assert (ready.status_code, ready.json()) == (200, {"triton": True, "redis": False})

    stack.local.start_component("redis")
    until_hit(lambda: stack.predict(body), lambda r: r.headers["X-Cache"])  # stored again
    assert value(scrape(stack.gateway_metrics_url), "gateway_redis_errors") >= 1


def test_triton_killed_gives_a_fast_503_then_recovers_without_restarting_the_gateway(make_stack):
    stack = make_stack()
    cached = payload(fresh_image())
    until_hit(lambda: stack.predict(cached), lambda r: r.headers["X-Cache"])
    stack.local.stop_component("triton", signal.SIGKILL)

    started = time.perf_counter()
    down = stack.predict(payload(fresh_image()))
    elapsed = time.perf_counter() - started
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == "1"
    assert elapsed < 1.0
    assert stack.predict(cached).headers["X-Cache"] == "HIT"  # cached answers outlive Triton

    stack.local.start_component("triton")
    deadline = time.monotonic() + 10
    while (
        recovered := stack.predict(payload(fresh_image()))
    ).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recovered.status_code == 200


def test_a_dead_endpoint_in_the_list_is_failed_over(make_stack, stack):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    own = make_stack(GATEWAY_TRITON_URL=f"127.0.0.1:{dead_port},{stack.triton_grpc_url}")
    answers = [own.predict(payload(fresh_image())) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 6


def test_a_stalled_triton_gives_504_and_in_flight_stays_bounded(make_stack):
    stack = make_stack(GATEWAY_TRITON_TIMEOUT_MS="300", GATEWAY_MAX_IN_FLIGHT="8")
    assert stack.predict(payload(fresh_image())).status_code == 200  # model metadata now known
    triton_pid = stack.local.processes.pid("triton")
    os.kill(triton_pid, signal.SIGSTOP)
    try:

        async def burst():
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
                return await asyncio.gather(
                    *(client.post("/predict", json=payload(fresh_image())) for _ in range(24))
                )

        codes = [r.status_code for r in asyncio.run(burst())]
    finally:
        os.kill(triton_pid, signal.SIGCONT)
    assert set(codes) <= {429, 504}
    assert codes.count(504) >= 1 and codes.count(429) >= 1
    assert codes.count(504) <= 8  # never more than max_in_flight waiting on Triton at once
    assert value(scrape(stack.gateway_metrics_url), "gateway_in_flight_requests") == 0


def token_request(ids: list[list[int]]) -> dict:
    return {
        "model": "minilm",
        "inputs": {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]},
    }


def grpc_tokens(ids: list[list[int]], model: str = "minilm") -> list[grpcclient.InferInput]:
    array = np.array(ids, np.int64).reshape(len(ids), -1)
    tensors = []
    for name, values in (("input_ids", array), ("attention_mask", np.ones_like(array))):
        tensor = grpcclient.InferInput(name, list(values.shape), "INT64")
        tensor.set_data_from_numpy(values)
        tensors.append(tensor)
    return tensors


def grpc_refusal(stack, tensors, model: str = "minilm") -> str:
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, tensors)
    assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"
    return raised.value.message()


OUT_OF_VOCABULARY = (
    "input 'input_ids': value 40000 is outside the valid range [0, 30521] "
    "(config parameter valid_range:input_ids)"
)


def test_token_ids_outside_the_vocabulary_are_a_400_on_both_front_ends_and_never_reach_triton(
    stack,
):
    before = stack.triton_inferences("minilm")
    http = stack.predict(token_request([[101, 40000, 102]]))
    assert (http.status_code, http.json()["error"]) == (400, OUT_OF_VOCABULARY)
    assert grpc_refusal(stack, grpc_tokens([[101, 40000, 102]])) == OUT_OF_VOCABULARY
    assert stack.triton_inferences_since(before, "minilm") == 0


def test_good_and_out_of_vocabulary_requests_sent_together_each_get_their_own_answer(stack):
    async def together():
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post("/predict", json=token_request([[101, 2000 + i, 102]]))
                    for i in range(8)
                ),
                *(
                    client.post("/predict", json=token_request([[101, 40000 + i, 102]]))
                    for i in range(8)
                ),
            )

    statuses = [r.status_code for r in asyncio.run(together())]
    assert statuses == [200] * 8 + [400] * 8
    assert stack.predict(token_request([[101, 1999, 102]])).status_code == 200  # Triton is up


def test_an_empty_sequence_is_a_400_on_both_front_ends(stack):
    message = (
        "input 'input_ids': shape [1, 0] has an empty axis, which the model does not accept "
        "(config parameter allow_empty:input_ids)"
    )
    http = stack.predict(token_request([[]]))
    assert (http.status_code, http.json()["error"]) == (400, message)
    assert grpc_refusal(stack, grpc_tokens([[]])) == message


MISMATCHED = (
    "inputs 'input_ids' and 'attention_mask' disagree on the length of axis 'sequence': 3 vs 2 "
    "(config parameter shared_axis:sequence)"
)


def test_ids_and_a_mask_of_different_lengths_are_a_400_on_both_front_ends_and_never_reach_triton(
    stack,
):
    """The converter wrote shared_axis:sequence from the export's axis names: ONNX Runtime would
    answer this pair without an error, with an embedding that is neither sentence's."""
    before = stack.triton_inferences("minilm")
    ids = fresh_ids(3)
    http = stack.predict(
        {"model": "minilm", "inputs": {"input_ids": ids, "attention_mask": [[1, 1]]}}
    )
    assert (http.status_code, http.json()["error"]) == (400, MISMATCHED)
    tensors = grpc_tokens(ids)
    mask = grpcclient.InferInput("attention_mask", [1, 2], "INT64")
    mask.set_data_from_numpy(np.ones((1, 2), np.int64))
    assert grpc_refusal(stack, [tensors[0], mask]) == MISMATCHED
    assert stack.triton_inferences_since(before, "minilm") == 0


TOO_LONG = (
    "input 'input_ids': length 513 exceeds the model's maximum 512 "
    "(config parameter max_length:input_ids)"
)


def fresh_ids(length: int) -> list[list[int]]:
    """One sequence of in-vocabulary ids no other test sent (a cache miss)."""
    return [rng.integers(1000, 30000, length).tolist()]


def test_a_sequence_beyond_max_length_is_a_400_on_both_front_ends_and_never_reaches_triton(stack):
    before = stack.triton_inferences("minilm")
    http = stack.predict(token_request(fresh_ids(513)))
    assert (http.status_code, http.json()["error"]) == (400, TOO_LONG)
    assert grpc_refusal(stack, grpc_tokens(fresh_ids(513))) == TOO_LONG
    assert stack.triton_inferences_since(before, "minilm") == 0


def test_a_sequence_of_max_length_tokens_is_answered_by_the_model_on_both_front_ends(stack):
    before = stack.triton_inferences("minilm")
    http = stack.predict(token_request(fresh_ids(512)))
    assert http.status_code == 200, http.text
    client = grpcclient.InferenceServerClient(stack.gateway_grpc_url)
    answer = client.infer("minilm", grpc_tokens(fresh_ids(512)))
    assert answer.as_numpy("embedding").shape == (1, 384)
    assert stack.triton_inferences_since(before, "minilm") == 2


@pytest.fixture(scope="module")
def config_stack(tmp_path_factory, model_repository):
    """MiniLM INT8 with its text ensemble, and `minilm_handwritten`: the same model under a
    hand-written config (no fingerprint, no valid_range). Model info is re-read every 0.2 s."""
    root = tmp_path_factory.mktemp("configs")
    repository = root / "repo"
    for name in ("minilm_tokenizer", "minilm", "minilm_text"):
        shutil.copytree(model_repository / name, repository / name)
    shutil.copytree(model_repository / "minilm", repository / "minilm_handwritten")
    config = read_config(repository / "minilm_handwritten" / "config.pbtxt")
    config.name = "minilm_handwritten"
    config.ClearField("parameters")
    write_config(config, repository / "minilm_handwritten" / "config.pbtxt")
    stack = start_stack(root / "run", repository, GATEWAY_MODEL_INFO_TTL_S="0.2")
    yield stack
    stack.local.stop()


def test_an_onnx_runtime_fault_of_the_input_is_a_400_not_a_502(config_stack):
    """Without valid_range the id reaches ONNX Runtime, which fails on it (one request alone)."""
    body = {**token_request([[101, 40000, 102]]), "model": "minilm_handwritten"}
    http = config_stack.predict(body)
    assert http.status_code == 400, http.text
    assert "index out of range" in http.json()["error"]
    # the local twin answers INVALID_ARGUMENT itself; the native backend's INTERNAL for the same
    # fault ("the model rejected the input: ...") is held by the conformance corpus
    message = grpc_refusal(config_stack, grpc_tokens([[101, 40001, 102]]), "minilm_handwritten")
    assert "index out of range" in message


def test_a_model_without_a_fingerprint_is_answered_never_cached_and_logged_once(config_stack):
    body = {**token_request([[101, 7592, 102]]), "model": "minilm_handwritten"}
    answers = [config_stack.predict(body) for _ in range(3)]
    assert [(a.status_code, a.headers["X-Cache"]) for a in answers] == [(200, "MISS")] * 3
    for _ in range(3):
        trailers = grpc_call(config_stack, "minilm_handwritten", token_arrays([[101, 7592, 102]]))
        assert trailers["x-cache"] == "MISS"
    assert redis.Redis(port=config_stack.redis_port).keys("pred:minilm_handwritten:*") == []
    for log, metrics in (("gateway", config_stack.gateway_metrics_url), ("gateway-grpc", None)):
        url = metrics or config_stack.local.urls["gateway gRPC metrics"]
        bypassed = value(
            scrape(url),
            "gateway_cache_bypassed",
            model="minilm_handwritten",
            reason="no_fingerprint",
        )
        assert bypassed >= 3
        text = config_stack.local.processes.log_path(log).read_text()
        assert text.count("answers of model 'minilm_handwritten' are not cached") == 1


def grpc_call(stack, model: str, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """The trailing metadata (x-cache) of one raw gRPC inference through gateway-grpc."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array in tensors.items():
        datatype = "BYTES" if array.dtype == object else "INT64"
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        if datatype == "BYTES":
            request.raw_input_contents.append(
                b"".join(struct.pack("<I", len(item)) + item for item in array.ravel())
            )
        else:
            request.raw_input_contents.append(array.tobytes())
    with grpc.insecure_channel(stack.gateway_grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        _, call = stub.ModelInfer.with_call(request, timeout=30)
    return dict(call.trailing_metadata())


def token_arrays(ids: list[list[int]]) -> dict[str, np.ndarray]:
    array = np.array(ids, np.int64)
    return {"input_ids": array, "attention_mask": np.ones_like(array)}


def test_an_ensemble_answers_anew_when_a_step_model_is_converted_again(
    config_stack, model_repository
):
    text = {"model": "minilm_text", "inputs": {"text": [["a member changed underneath"]]}}
    assert config_stack.predict(text).headers["X-Cache"] == "MISS"
    assert config_stack.predict(text).headers["X-Cache"] == "HIT"

    # converted again: a new file and its fingerprint; the ensemble's own config is not rewritten
    # (the unfused export kept for TensorRT: the same tensors, another file; always written)
    member = config_stack.local.model_repository / "minilm"
    shutil.copyfile(model_repository / "minilm" / "portable.onnx", member / "1" / "model.onnx")
    config = read_config(member / "config.pbtxt")
    config.parameters["fingerprint"].string_value = version_fingerprint(member / "1")
    write_config(config, member / "config.pbtxt")
    config_stack.local.reload_model("minilm")
    deadline = time.monotonic() + 10
    while (answer := config_stack.predict(text)).headers["X-Cache"] == "HIT":
        assert time.monotonic() < deadline, "the ensemble kept answering from the old entry"
        time.sleep(0.1)
    assert answer.status_code == 200
    # gateway-grpc combines the steps' fingerprints alike: the same key, stored by the HTTP answer
    words = {"text": np.array([[b"a member changed underneath"]], dtype=object)}
    deadline = time.monotonic() + 10
    while grpc_call(config_stack, "minilm_text", words)["x-cache"] != "HIT":
        assert time.monotonic() < deadline, "gateway-grpc computes another ensemble key"
        time.sleep(0.1)

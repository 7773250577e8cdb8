"""gateway-grpc (the native gRPC front end) against real Redis and real Triton: cache, coalescing,
faults and metrics, as the Python gateway is tested over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import grpc
import httpx
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from benchmarks.scrape import scrape, value
from tests.conftest import until_hit

pytestmark = pytest.mark.integration

rng = np.random.default_rng()  # fresh entropy: no other test, in any session stack, sends these
SERVICE = "inference.GRPCInferenceService"


def fresh_image(batch: int = 1) -> np.ndarray:
    return rng.random((batch, 1, 8, 8), dtype=np.float32)


def infer_request(
    image: np.ndarray, typed: bool = False, request_id: str = ""
) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="digits", id=request_id)
    tensor = request.inputs.add(name="image", datatype="FP32", shape=list(image.shape))
    if typed:
        tensor.contents.fp32_contents.extend(image.ravel().tolist())
    else:
        request.raw_input_contents.append(image.tobytes())
    return request


class Client:
    """The raw KServe v2 stub: the trailing x-cache and the status code are visible."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def infer(self, request: service_pb2.ModelInferRequest, **kwargs) -> tuple[np.ndarray, str]:
        response, call = self.stub.ModelInfer.with_call(request, timeout=30, **kwargs)
        logits = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(
            list(response.outputs[0].shape)
        )
        return logits, dict(call.trailing_metadata())["x-cache"]

    def code(self, request: service_pb2.ModelInferRequest) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as raised:
            self.stub.ModelInfer(request, timeout=30)
        return raised.value.code()


def written_behind(client: Client, request: service_pb2.ModelInferRequest) -> None:
    """Wait until `request` is answered from Redis: gateway-grpc writes an answer about 1 ms after
    sending it (later on a busy machine); a repeat before then joins the finished call and is
    answered from memory, as a MISS."""
    until_hit(lambda: client.infer(request), lambda answer: answer[1])


def grpc_metric(stack, name: str, **labels: str) -> float:
    return value(scrape(stack.local.urls["gateway gRPC metrics"]), name, **labels)


def test_a_miss_then_a_hit_with_the_request_id_echoed_and_counted_in_its_metrics(stack):
    client = Client(stack.gateway_grpc_url)
    image = fresh_image()
    first, state_first = client.infer(infer_request(image))
    written_behind(client, infer_request(image))
    before = grpc_metric(
        stack, "gateway_requests_total", model="digits", route="grpc:ModelInfer", status="200"
    )
    second, state_second = client.infer(infer_request(image))
    response = client.stub.ModelInfer(infer_request(image, request_id="req-7"), timeout=30)
    assert (state_first, state_second) == ("MISS", "HIT")
    assert np.array_equal(first, second) and first.shape == (1, 10)
    assert response.id == "req-7" and response.model_version == "1"
    after = grpc_metric(
        stack, "gateway_requests_total", model="digits", route="grpc:ModelInfer", status="200"
    )
    assert after - before == 2
    assert grpc_metric(stack, "gateway_cache_hits_total", model="digits") >= 2


def test_typed_contents_and_raw_bytes_of_one_tensor_share_one_cache_entry(stack):
    client = Client(stack.gateway_grpc_url)
    image = fresh_image()
    raw, _ = client.infer(infer_request(image))
    written_behind(client, infer_request(image))
    typed, state = client.infer(infer_request(image, typed=True))
    assert state == "HIT" and np.array_equal(raw, typed)


def test_identical_concurrent_grpc_misses_make_one_triton_call(stack):
    request = infer_request(fresh_image())
    before = stack.triton_inferences()
    coalesced_before = grpc_metric(stack, "gateway_coalesced_requests_total", model="digits")

    async def burst():
        async with grpc.aio.insecure_channel(stack.gateway_grpc_url) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            return await asyncio.gather(*(stub.ModelInfer(request, timeout=30) for _ in range(32)))

    responses = asyncio.run(burst())
    assert len({r.raw_output_contents[0] for r in responses}) == 1
    assert stack.triton_inferences_since(before) == 1
    assert grpc_metric(stack, "gateway_coalesced_requests_total", model="digits") > coalesced_before


def test_client_mistakes_get_invalid_argument_or_not_found_and_nothing_is_cached(stack):
    client = Client(stack.gateway_grpc_url)
    wrong_length = infer_request(fresh_image())
    wrong_length.raw_input_contents[0] = b"\0" * 12
    unknown_model = infer_request(fresh_image())
    unknown_model.model_name = "no_such_model"
    too_big = infer_request(fresh_image(65))
    assert client.code(wrong_length) == grpc.StatusCode.INVALID_ARGUMENT
    assert client.code(too_big) == grpc.StatusCode.INVALID_ARGUMENT
    assert client.code(unknown_model) == grpc.StatusCode.NOT_FOUND
    oversized = infer_request(fresh_image())
    oversized.raw_input_contents[0] = b"\0" * (9 << 20)  # over GATEWAY_MAX_BODY_BYTES (8 MiB)
    assert client.code(oversized) == grpc.StatusCode.RESOURCE_EXHAUSTED
    garbage = client.channel.unary_unary(f"/{SERVICE}/ModelInfer")
    with pytest.raises(grpc.RpcError) as raised:
        garbage(b"\xff\xff\xff", timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def concurrent_misses(address: str, count: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        await asyncio.gather(
            *(stub.ModelInfer(infer_request(fresh_image()), timeout=30) for _ in range(count))
        )


def test_redis_killed_grpc_requests_still_succeed_and_caching_resumes(make_stack):
    stack = make_stack(GATEWAY_REDIS_RETRY_AFTER_S="0.2")
    client = Client(stack.gateway_grpc_url)
    asyncio.run(concurrent_misses(stack.gateway_grpc_url, 32))  # many pooled Redis connections
    stack.local.stop_component("redis", signal.SIGKILL)
    request = infer_request(fresh_image())
    assert [client.infer(request)[1] for _ in range(3)] == ["MISS"] * 3
    ready = httpx.get(stack.local.urls["gateway gRPC metrics"].replace("/metrics", "/readyz"))
    assert (ready.status_code, ready.json()) == (200, {"triton": True, "redis": False})

    stack.local.start_component("redis")
    until_hit(lambda: client.infer(request), lambda answer: answer[1])  # stored again
    assert grpc_metric(stack, "gateway_redis_errors_total") >= 1


def test_triton_killed_gives_a_fast_unavailable_then_recovers_without_restarting(make_stack):
    stack = make_stack()
    client = Client(stack.gateway_grpc_url)
    cached = infer_request(fresh_image())
    until_hit(lambda: client.infer(cached), lambda answer: answer[1])
    stack.local.stop_component("triton", signal.SIGKILL)

    started = time.perf_counter()
    assert client.code(infer_request(fresh_image())) == grpc.StatusCode.UNAVAILABLE
    assert time.perf_counter() - started < 1.0
    assert client.infer(cached)[1] == "HIT"  # cached answers outlive Triton

    stack.local.start_component("triton")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            assert client.infer(infer_request(fresh_image()))[1] == "MISS"
            break
        except grpc.RpcError:
            time.sleep(0.2)
    else:
        pytest.fail("gateway-grpc did not recover after Triton came back")
    assert grpc_metric(stack, "gateway_triton_errors_total", code="UNAVAILABLE") >= 1


def test_a_dead_endpoint_in_the_list_is_failed_over(make_stack, stack):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    own = make_stack(GATEWAY_TRITON_URL=f"127.0.0.1:{dead_port},{stack.triton_grpc_url}")
    client = Client(own.gateway_grpc_url)
    assert [client.infer(infer_request(fresh_image()))[1] for _ in range(6)] == ["MISS"] * 6


def test_a_stalled_triton_gives_deadline_exceeded_and_in_flight_stays_bounded(make_stack):
    stack = make_stack(GATEWAY_TRITON_TIMEOUT_MS="300", GATEWAY_MAX_IN_FLIGHT="8")
    Client(stack.gateway_grpc_url).infer(infer_request(fresh_image()))  # model metadata now known
    triton_pid = stack.local.processes.pid("triton")
    os.kill(triton_pid, signal.SIGSTOP)
    try:

        async def burst():
            async with grpc.aio.insecure_channel(stack.gateway_grpc_url) as channel:
                stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

                async def one():
                    try:
                        await stub.ModelInfer(infer_request(fresh_image()), timeout=30)
                        return grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as error:
                        return error.code()

                return await asyncio.gather(*(one() for _ in range(24)))

        codes = asyncio.run(burst())
    finally:
        os.kill(triton_pid, signal.SIGCONT)
    assert set(codes) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert 1 <= codes.count(grpc.StatusCode.DEADLINE_EXCEEDED) <= 8  # never more than max_in_flight
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    assert grpc_metric(stack, "gateway_in_flight_requests") == 0
    assert grpc_metric(stack, "gateway_shed_requests_total") >= 1


def test_priority_and_timeout_reach_triton_and_other_request_parameters_are_refused(stack):
    client = Client(stack.gateway_grpc_url)
    forwarded = infer_request(fresh_image())
    forwarded.parameters["priority"].uint64_param = 1
    forwarded.parameters["timeout"].int64_param = 10**6
    forwarded.parameters["triton_enable_empty_final_response"].bool_param = True  # perf_analyzer
    assert client.infer(forwarded)[1] == "MISS"
    refused = infer_request(fresh_image())
    refused.parameters["sequence_id"].int64_param = 4
    with pytest.raises(grpc.RpcError) as raised:
        client.stub.ModelInfer(refused, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "request parameters ['sequence_id'] are not supported by the gateway; "
        "supported: ['priority', 'timeout', 'triton_enable_empty_final_response']"
    )


def test_an_answer_holding_nan_is_returned_and_never_cached(stack):
    client = Client(stack.gateway_grpc_url)
    image = fresh_image()
    image[0, 0, 0, 0] = np.nan
    before = grpc_metric(stack, "gateway_cache_bypassed_total", model="digits", reason="non_finite")
    first, state = client.infer(infer_request(image))
    # writes are pipelined in order: once a later answer is in Redis, a store of the first would be
    written_behind(client, infer_request(fresh_image()))
    _, again = client.infer(infer_request(image))
    assert np.isnan(first).all() and (state, again) == ("MISS", "MISS")
    after = grpc_metric(stack, "gateway_cache_bypassed_total", model="digits", reason="non_finite")
    assert after - before == 2

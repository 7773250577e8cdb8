"""Faults under load, with real processes: Redis killed or full never fails a request."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time

import grpc
import httpx
import numpy as np
import pytest
import redis
from tritonclient.grpc import service_pb2, service_pb2_grpc

from benchmarks.scrape import scrape, value
from conversion.triton_config import read_config, write_config
from tests.conftest import start_stack, until_hit

pytestmark = pytest.mark.integration


def image_payload(seed: int) -> dict:
    image = np.random.default_rng(seed).random((1, 1, 8, 8), dtype=np.float32)
    return {"model": "digits", "inputs": {"image": image.tolist()}}


async def steady_load(url: str, seconds: float, concurrency: int = 16) -> list[int]:
    """Closed-loop load over a small repeated set (hits and misses), for `seconds`."""
    statuses: list[int] = []
    deadline = time.monotonic() + seconds

    async def user(worker: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            n = 0
            while time.monotonic() < deadline:
                response = await client.post("/predict", json=image_payload(worker * 1000 + n % 20))
                statuses.append(response.status_code)
                n += 1

    await asyncio.gather(*(user(w) for w in range(concurrency)))
    return statuses


def test_redis_sigkilled_under_16_clients_fails_no_request_and_hits_resume(make_stack):
    stack = make_stack(GATEWAY_REDIS_RETRY_AFTER_S="0.2")

    async def scenario() -> list[int]:
        load = asyncio.create_task(steady_load(stack.gateway_url, seconds=4.0))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.local.stop_component, "redis", signal.SIGKILL)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stack.local.start_component, "redis")
        return await load

    statuses = asyncio.run(scenario())
    assert len(statuses) > 100
    assert set(statuses) == {200}, sorted(set(statuses))
    until_hit(lambda: stack.predict(image_payload(424242)), lambda r: r.headers["X-Cache"])
    samples = scrape(stack.gateway_metrics_url)
    assert value(samples, "gateway_redis_errors") >= 1
    assert value(samples, "gateway_cache_hits") > 0


def test_redis_at_maxmemory_without_eviction_still_serves(make_stack):
    stack = make_stack()
    admin = redis.Redis(port=stack.redis_port)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")  # every write is now refused with OOM
    try:
        answers = [stack.predict(image_payload(9000 + i)) for i in range(5)]
        assert [r.status_code for r in answers] == [200] * 5
        assert admin.dbsize() == 0
        assert value(scrape(stack.gateway_metrics_url), "gateway_cache_errors", op="set") >= 1
    finally:
        admin.config_set("maxmemory", "0")


def digits_copy(model_repository, repository, name: str, delay_us: int, **policy: int) -> None:
    """digits served as `name`, its queue policy changed (a dynamic batch waits `delay_us`)."""
    shutil.copytree(model_repository / "digits", repository / name)
    config = read_config(repository / name / "config.pbtxt")
    config.name = name
    config.dynamic_batching.max_queue_delay_microseconds = delay_us
    config.dynamic_batching.preferred_batch_size[:] = [64]
    queue = config.dynamic_batching.default_queue_policy
    for field, setting in policy.items():
        setattr(queue, field, setting)
    write_config(config, repository / name / "config.pbtxt")


@pytest.fixture(scope="module")
def queue_stack(tmp_path_factory, model_repository):
    """A stack serving digits with a one-request queue and digits whose queue times out at once."""
    root = tmp_path_factory.mktemp("queues")
    digits_copy(model_repository, root / "repo", "digits_one_slot", 200_000, max_queue_size=1)
    digits_copy(
        model_repository, root / "repo", "digits_1ms", 200_000, default_timeout_microseconds=1000
    )
    stack = start_stack(root / "run", root / "repo")
    yield stack
    stack.local.stop()


async def http_burst(stack, model: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        body = {"model": model, "inputs": image_payload(0)["inputs"]}
        await client.post("/predict", json=body)  # model metadata now known
        return await asyncio.gather(
            *(
                client.post(
                    "/predict", json={"model": model, "inputs": image_payload(100 + i)["inputs"]}
                )
                for i in range(count)
            )
        )


async def grpc_burst(stack, model: str, count: int) -> list[grpc.aio.AioRpcError | None]:
    async with grpc.aio.insecure_channel(stack.gateway_grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        async def one(seed: int):
            image = np.random.default_rng(seed).random((1, 1, 8, 8), dtype=np.float32)
            request = service_pb2.ModelInferRequest(model_name=model)
            request.inputs.add(name="image", datatype="FP32", shape=[1, 1, 8, 8])
            request.raw_input_contents.append(image.tobytes())
            try:
                await stub.ModelInfer(request, timeout=30)
            except grpc.aio.AioRpcError as error:
                return error
            return None

        return await asyncio.gather(*(one(500 + i) for i in range(count)))


QUEUE_CASES = {
    "queue full": ("digits_one_slot", "model queue is full: ", "queue_full"),
    "queue timeout": ("digits_1ms", "request timed out in the model queue: ", "queue_timeout"),
}


@pytest.mark.parametrize(("model", "answer", "reason"), QUEUE_CASES.values(), ids=QUEUE_CASES)
def test_a_full_queue_and_a_queue_timeout_are_429s_that_say_which_on_both_front_ends(
    queue_stack, model, answer, reason
):
    responses = asyncio.run(http_burst(queue_stack, model, 16))
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {200, 429}
    assert all(r.headers["Retry-After"] == "1" for r in rejected)
    assert all(r.json()["error"].startswith(answer) for r in rejected), rejected[0].text
    assert value(scrape(queue_stack.gateway_metrics_url), "gateway_queue_rejections", reason=reason)

    errors = [e for e in asyncio.run(grpc_burst(queue_stack, model, 16)) if e is not None]
    assert errors and {e.code() for e in errors} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert all(e.details().startswith(answer) for e in errors), errors[0].details()
    grpc_metrics = scrape(queue_stack.local.urls["gateway gRPC metrics"])
    assert value(grpc_metrics, "gateway_queue_rejections_total", reason=reason) >= len(errors)

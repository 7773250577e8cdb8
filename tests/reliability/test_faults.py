"""Faults under load, with real processes: Redis killed or full never fails a request."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time

import httpx
import numpy as np
import pytest
import redis

from benchmarks.scrape import scrape, value
from conversion.triton_config import read_config, write_config
from tests.conftest import start_stack, until_hit

pytestmark = pytest.mark.integration


def image_payload(seed: int) -> dict:
    image = np.random.default_rng(seed).random((1, 1, 8, 8), dtype=np.float32)
    return {"model": "digits", "inputs": {"image": image.tolist()}}


async def steady_load(url: str, seconds: float, concurrency: int = 8) -> list[int]:
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


def test_redis_sigkilled_during_load_fails_no_request_and_hits_resume(make_stack):
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
    assert set(statuses) == {200}
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


def test_a_full_triton_queue_gives_429_with_retry_after(tmp_path, model_repository):
    repository = tmp_path / "repo"
    shutil.copytree(model_repository / "digits", repository / "digits")
    config = read_config(repository / "digits/config.pbtxt")
    config.dynamic_batching.max_queue_delay_microseconds = 200_000
    config.dynamic_batching.default_queue_policy.max_queue_size = 1
    write_config(config, repository / "digits/config.pbtxt")
    stack = start_stack(tmp_path / "run", repository)
    try:

        async def burst():
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
                await client.post("/predict", json=image_payload(1))  # metadata known
                return await asyncio.gather(
                    *(client.post("/predict", json=image_payload(100 + i)) for i in range(16))
                )

        responses = asyncio.run(burst())
    finally:
        stack.local.stop()
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {200, 429}
    assert all(r.headers["Retry-After"] == "1" and "queue" in r.text for r in rejected)

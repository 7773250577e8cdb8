"""The per-row cache's logic (a dict for Redis, a counting stand-in for Triton): which rows reach
Triton, in which order, and what is stored; tests/gateway/test_row_cache_integration.py runs it
against real Redis, Triton and both gateways."""

import asyncio
import dataclasses

import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.cache_key import cache_key, row_keys
from gateway.errors import GatewayError
from gateway.service import PredictionService
from gateway.settings import Settings
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TensorInfo

INFO = ModelInfo(
    name="rows",
    version="1",
    fingerprint="f",
    max_batch_size=64,
    inputs={"x": TensorInfo("x", "FP32", (-1, 2))},
    outputs={"y": TensorInfo("y", "FP32", (-1, 1))},
    row_cache=True,
)
CACHING = Settings(cache_enabled=True, cache_ttl_s=60, cache_model_ttl_s={})


def batch(*rows: float) -> list[Tensor]:
    """Row r is [r, r + 0.5]."""
    return [Tensor("x", "FP32", np.array([[r, r + 0.5] for r in rows], np.float32))]


class Cache:
    """get_many/put_many over a dict; `gets` holds the keys of each MGET."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.gets: list[list[str]] = []
        self.puts: list[list[str]] = []

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        self.gets.append(keys)
        return [self.values.get(k) for k in keys]

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: int) -> int:
        self.puts.append([k for k, _ in items])
        self.values.update(items)
        return len(items)


class Triton:
    """y = x0 + x1 per row; `received` holds the first column of each request's rows."""

    def __init__(self) -> None:
        self.received: list[list[float]] = []
        self.answer = asyncio.Event()
        self.answer.set()
        self.failure: Exception | None = None

    async def infer(self, info, inputs, outputs, parameters=None):
        x = inputs[0].array
        self.received.append(x[:, 0].tolist())
        await self.answer.wait()
        if self.failure:
            raise self.failure
        return {"y": Tensor("y", "FP32", x.sum(axis=1, keepdims=True))}


@pytest.fixture
def parts():
    cache, triton = Cache(), Triton()
    return PredictionService(CACHING, triton, cache), cache, triton


async def settled(service: PredictionService) -> None:
    while len(service.row_cache.flights):
        await asyncio.sleep(0)


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"model": "rows"}) or 0.0


def expected(*rows: float) -> list[list[float]]:
    return [[2 * r + 0.5] for r in rows]


async def test_a_cached_row_is_not_sent_to_triton_again(parts):
    service, _, triton = parts
    await service.predict(INFO, batch(1, 2))
    await settled(service)
    again = await service.predict(INFO, batch(2, 1))
    assert triton.received == [[1, 2]]
    assert again.outputs["y"].array.tolist() == expected(2, 1)
    assert (again.cache_state, again.rows_from_cache) == ("HIT", 2)


async def test_only_missing_rows_go_to_triton_as_one_request_in_their_order(parts):
    service, _, triton = parts
    await service.predict(INFO, batch(3, 5))
    await settled(service)
    answer = await service.predict(INFO, batch(9, 3, 7, 5, 8))
    assert triton.received[-1] == [9, 7, 8]
    assert answer.outputs["y"].array.tolist() == expected(9, 3, 7, 5, 8)
    assert (answer.cache_state, answer.rows_from_cache) == ("PARTIAL", 2)


async def test_all_rows_are_looked_up_in_one_round_trip(parts):
    service, cache, _ = parts
    await service.predict(INFO, batch(1, 2, 3))
    assert len(cache.gets) == 1 and len(cache.gets[0]) == 3


async def test_identical_rows_in_one_request_are_computed_once(parts):
    service, cache, triton = parts
    answer = await service.predict(INFO, batch(4, 6, 4, 4))
    await settled(service)
    assert triton.received == [[4, 6]] and cache.puts == [row_keys("rows", "f", batch(4, 6))]
    assert answer.outputs["y"].array.tolist() == expected(4, 6, 4, 4)
    assert (answer.cache_state, answer.rows_from_cache) == ("MISS", 0)


async def test_concurrent_requests_sharing_rows_compute_each_row_once(parts):
    service, _, triton = parts
    triton.answer.clear()
    first = asyncio.create_task(service.predict(INFO, batch(1, 2)))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.predict(INFO, batch(2, 3)))
    await asyncio.sleep(0)
    triton.answer.set()
    one, two = await asyncio.gather(first, second)
    assert sorted(map(tuple, triton.received)) == [(1, 2), (3,)]
    assert one.outputs["y"].array.tolist() == expected(1, 2)
    assert two.outputs["y"].array.tolist() == expected(2, 3) and two.cache_state == "MISS"


async def test_a_request_arriving_before_the_rows_are_stored_joins_them(parts):
    service, cache, triton = parts
    writes = asyncio.Event()
    put_many = cache.put_many

    async def slow_put(items, ttl_s):
        await writes.wait()
        return await put_many(items, ttl_s)

    cache.put_many = slow_put
    await service.predict(INFO, batch(1))
    await service.predict(INFO, batch(1))
    writes.set()
    await settled(service)
    assert triton.received == [[1]]


async def test_a_row_holding_nan_is_answered_never_stored(parts):
    service, cache, _ = parts
    answer = await service.predict(INFO, batch(float("nan"), 1))
    await settled(service)
    assert np.isnan(answer.outputs["y"].array[0, 0])
    assert cache.puts == [row_keys("rows", "f", batch(1))]


async def test_a_failed_triton_call_fails_every_request_waiting_on_its_rows(parts):
    service, _, triton = parts
    triton.answer.clear()
    triton.failure = GatewayError(503, "Triton is unavailable")
    first = asyncio.create_task(service.predict(INFO, batch(1, 2)))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.predict(INFO, batch(2)))
    await asyncio.sleep(0)
    triton.answer.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert [getattr(r, "status", None) for r in results] == [503, 503]
    assert len(service.row_cache.flights) == 0


async def test_a_row_is_joined_only_by_requests_with_the_same_priority_and_timeout(parts):
    service, _, triton = parts
    triton.answer.clear()

    class TimedOut(Triton):  # Triton refuses the request that set a 1 us timeout
        async def infer(self, info, inputs, outputs, parameters=None):
            answer = await Triton.infer(self, info, inputs, outputs)
            if parameters:
                raise GatewayError(429, "request timed out in the model queue")
            return answer

    triton.__class__ = TimedOut
    hurried = asyncio.create_task(service.predict(INFO, batch(1), parameters={"timeout": 1}))
    await asyncio.sleep(0)
    plain = asyncio.create_task(service.predict(INFO, batch(1)))
    same = asyncio.create_task(service.predict(INFO, batch(1), parameters={"timeout": 1}))
    await asyncio.sleep(0)
    triton.answer.set()
    results = await asyncio.gather(hurried, plain, same, return_exceptions=True)
    assert [getattr(r, "status", None) for r in results] == [429, None, 429]
    assert results[1].outputs["y"].array.tolist() == expected(1)
    assert triton.received == [[1.0], [1.0]]  # the plain request made its own call
    await settled(service)


async def test_a_request_that_goes_away_does_not_cancel_rows_others_wait_for(parts):
    service, _, triton = parts
    triton.answer.clear()
    first = asyncio.create_task(service.predict(INFO, batch(1)))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.predict(INFO, batch(1)))
    await asyncio.sleep(0)
    first.cancel()
    triton.answer.set()
    assert (await second).outputs["y"].array.tolist() == expected(1)


async def test_rows_hit_and_missed_are_counted_per_model(parts):
    service, _, _ = parts
    await service.predict(INFO, batch(11))
    await settled(service)
    hits, misses = (
        counted("gateway_cache_row_hits_total"),
        counted("gateway_cache_row_misses_total"),
    )
    await service.predict(INFO, batch(11, 12, 12))
    assert counted("gateway_cache_row_hits_total") - hits == 1
    assert counted("gateway_cache_row_misses_total") - misses == 2


async def test_a_model_without_row_cache_keeps_the_whole_request_key(parts):
    service, cache, _ = parts
    whole = dataclasses.replace(INFO, row_cache=False)
    service.cache.get = lambda key: asyncio.sleep(0, cache.values.get(key))
    stored: list[str] = []

    async def put(key, value, ttl):
        stored.append(key)

    service.cache.put = put
    answer = await service.predict(whole, batch(1, 2))
    await asyncio.sleep(0)
    assert stored == [cache_key("rows", "f", batch(1, 2))] and answer.rows_from_cache is None


def test_a_row_key_is_the_same_in_any_batch_and_position():
    assert row_keys("rows", "f", batch(5, 1))[::-1] == row_keys("rows", "f", batch(1, 5))
    assert row_keys("rows", "f", batch(1))[0] != cache_key("rows", "f", batch(1))


def test_a_row_key_covers_the_row_shape_datatype_outputs_and_fingerprint():
    key = row_keys("rows", "f", batch(1))[0]
    wide = [Tensor("x", "FP32", np.array([[1, 1.5, 0]], np.float32))]
    double = [Tensor("x", "FP64", np.array([[1, 1.5]], np.float64))]
    assert key not in row_keys("rows", "f", wide) + row_keys("rows", "f", double)
    assert key not in row_keys("rows", "g", batch(1)) + row_keys("rows", "f", batch(1), ["y"])

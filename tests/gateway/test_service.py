"""Identical requests share one cache lookup and one inference, so none reaches Triton twice."""

import asyncio
import dataclasses

import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.errors import GatewayError
from gateway.service import PredictionService
from gateway.settings import Settings
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TensorInfo

INFO = ModelInfo(
    name="digits",
    version="1",
    fingerprint="f",
    max_batch_size=8,
    inputs={"image": TensorInfo("image", "FP32", (-1, 2))},
    outputs={"logits": TensorInfo("logits", "FP32", (-1, 1))},
)
INPUTS = [Tensor("image", "FP32", np.ones((1, 2), np.float32))]
CACHING = Settings(cache_enabled=True, cache_ttl_s=60, cache_model_ttl_s={})


class Cache:
    """A dict with counted lookups; lookups and writes complete when the test says so."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.lookups = 0
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        self.lookups += 1
        await self.readable.wait()
        return self.values.get(key)

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self.writable.wait()
        self.values[key] = value


class Triton:
    def __init__(self, failure: Exception | None = None) -> None:
        self.inferences = 0
        self.answer = asyncio.Event()
        self.failure = failure

    async def infer(self, info, inputs, outputs, parameters=None):
        self.inferences += 1
        await self.answer.wait()
        if self.failure:
            raise self.failure
        return {"logits": Tensor("logits", "FP32", np.array([[7.0]], np.float32))}


async def until(condition) -> None:
    while not condition():
        await asyncio.sleep(0)


def misses() -> float:
    return REGISTRY.get_sample_value("gateway_cache_misses_total", {"model": "digits"}) or 0.0


async def test_requests_during_the_lookup_inference_or_store_of_an_identical_one_join_it():
    cache, triton = Cache(), Triton()
    service = PredictionService(CACHING, triton, cache)
    first = asyncio.create_task(service.predict(INFO, INPUTS))
    await until(lambda: cache.lookups)
    during_lookup = asyncio.create_task(service.predict(INFO, INPUTS))
    cache.readable.set()
    await until(lambda: triton.inferences)
    during_inference = asyncio.create_task(service.predict(INFO, INPUTS))
    triton.answer.set()
    assert not (await first).cache_hit
    during_store = await service.predict(INFO, INPUTS)  # the write has not completed
    cache.writable.set()
    await asyncio.sleep(0.01)
    after_store = await service.predict(INFO, INPUTS)
    joined = [await during_lookup, await during_inference, during_store]
    assert [p.cache_hit for p in joined] == [False] * 3 and after_store.cache_hit
    assert (triton.inferences, cache.lookups) == (1, 2)
    assert after_store.outputs["logits"].array.tolist() == [[7.0]]


async def test_with_caching_off_identical_requests_still_make_one_inference_and_no_lookup():
    cache, triton = Cache(), Triton()
    service = PredictionService(Settings(cache_enabled=False), triton, cache)
    requests = [asyncio.create_task(service.predict(INFO, INPUTS)) for _ in range(3)]
    await asyncio.sleep(0)
    triton.answer.set()
    assert [p.cache_hit for p in await asyncio.gather(*requests)] == [False] * 3
    assert (triton.inferences, cache.lookups) == (1, 0)


async def test_a_failed_inference_reaches_every_waiter_counts_their_misses_and_stores_nothing():
    cache, triton = Cache(), Triton(GatewayError(503, "Triton is unavailable"))
    cache.readable.set()
    cache.writable.set()
    service = PredictionService(CACHING, triton, cache)
    before = misses()
    requests = [asyncio.create_task(service.predict(INFO, INPUTS)) for _ in range(3)]
    await until(lambda: triton.inferences)
    triton.answer.set()
    for request in requests:
        with pytest.raises(GatewayError, match="unavailable"):
            await request
    assert (misses() - before, triton.inferences, cache.values) == (3, 1, {})


def bypassed(reason: str) -> float:
    labels = {"model": "digits", "reason": reason}
    return REGISTRY.get_sample_value("gateway_cache_bypassed_total", labels) or 0.0


class NonFiniteTriton(Triton):
    async def infer(self, info, inputs, outputs, parameters=None):
        self.inferences += 1
        return {"logits": Tensor("logits", "FP32", np.array([[np.nan]], np.float32))}


async def test_an_answer_holding_nan_is_returned_counted_and_never_stored():
    cache, triton = Cache(), NonFiniteTriton()
    cache.readable.set()
    cache.writable.set()
    service = PredictionService(CACHING, triton, cache)
    before = bypassed("non_finite")
    for _ in range(2):
        answer = await service.predict(INFO, INPUTS)
        assert np.isnan(answer.outputs["logits"].array).all() and not answer.cache_hit
    assert (cache.values, triton.inferences) == ({}, 2)
    assert bypassed("non_finite") - before == 2


async def test_a_model_without_a_fingerprint_is_answered_never_cached_and_told_once(caplog):
    cache, triton = Cache(), Triton()
    triton.answer.set()
    service = PredictionService(CACHING, triton, cache)
    unfingerprinted = dataclasses.replace(INFO, fingerprint="", unfingerprinted="digits")
    before = bypassed("no_fingerprint")
    for _ in range(3):
        assert not (await service.predict(unfingerprinted, INPUTS)).cache_hit
    assert (cache.lookups, cache.values, triton.inferences) == (0, {}, 3)
    assert bypassed("no_fingerprint") - before == 3
    told = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
    assert len(told) == 1 and "'fingerprint' parameter" in told[0]


async def test_priority_and_timeout_reach_triton_and_leave_the_key_alone():
    seen = []

    class Recording(Triton):
        async def infer(self, info, inputs, outputs, parameters=None):
            seen.append(parameters)
            return await super().infer(info, inputs, outputs)

    cache, triton = Cache(), Recording()
    cache.readable.set()
    cache.writable.set()
    triton.answer.set()
    service = PredictionService(CACHING, triton, cache)
    inputs = [Tensor("image", "FP32", np.full((1, 2), 3.0, np.float32))]
    await service.predict(INFO, inputs, parameters={"priority": 1, "timeout": 100})
    await asyncio.sleep(0.01)
    again = await service.predict(INFO, inputs, parameters={"priority": 2})
    assert seen == [{"priority": 1, "timeout": 100}] and again.cache_hit


async def test_a_request_joins_an_identical_one_only_with_the_same_priority_and_timeout():
    class TimedOut(Triton):  # Triton refuses the request that set a 1 us timeout
        async def infer(self, info, inputs, outputs, parameters=None):
            self.inferences += 1
            await self.answer.wait()
            if parameters:
                raise GatewayError(429, "request timed out in the model queue")
            return {"logits": Tensor("logits", "FP32", np.array([[7.0]], np.float32))}

    cache, triton = Cache(), TimedOut()
    cache.readable.set()
    cache.writable.set()
    service = PredictionService(CACHING, triton, cache)
    hurried = asyncio.create_task(service.predict(INFO, INPUTS, parameters={"timeout": 1}))
    await until(lambda: triton.inferences)
    plain = [asyncio.create_task(service.predict(INFO, INPUTS)) for _ in range(3)]
    same = asyncio.create_task(service.predict(INFO, INPUTS, parameters={"timeout": 1}))
    await asyncio.wait_for(until(lambda: triton.inferences == 2), 5)  # the plain call's own
    triton.answer.set()
    with pytest.raises(GatewayError, match="timed out"):
        await hurried
    with pytest.raises(GatewayError, match="timed out"):
        await same  # equal parameters: it joined the first call
    answers = await asyncio.gather(*plain)
    assert [a.outputs["logits"].array.tolist() for a in answers] == [[[7.0]]] * 3
    assert triton.inferences == 2

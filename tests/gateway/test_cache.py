"""Whatever the Redis client raises, a lookup is a miss and a store is skipped; only
cancellation propagates."""

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.cache import PredictionCache

FAILURES = [
    RuntimeError(
        "unable to perform operation on <TCPTransport closed=True>; the handler is closed"
    ),
    RedisConnectionError("Connection closed by server."),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
    ValueError("invalid literal"),
    KeyError("x"),
    AttributeError("'NoneType' object has no attribute 'write'"),
]


class FailingRedis:
    """Stands in for redis.asyncio.Redis: every command raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def get(self, key):
        raise self.error

    async def set(self, key, value, ex=None):
        raise self.error

    async def ping(self):
        raise self.error

    async def mget(self, keys):
        raise self.error

    def pipeline(self, transaction=True):
        raise self.error


def cache_raising(error: BaseException) -> PredictionCache:
    cache = PredictionCache("redis://127.0.0.1:1/0", 50, 1 << 20, retry_after_s=0.0)
    cache.client = FailingRedis(error)
    return cache


@pytest.mark.parametrize("error", FAILURES, ids=lambda e: type(e).__name__)
async def test_any_failure_is_a_miss_a_skipped_store_and_not_ready(error):
    cache = cache_raising(error)
    assert await cache.get("pred:digits:k") is None
    assert await cache.put("pred:digits:k", b"v", 60) is False
    assert await cache.ping() is False


@pytest.mark.parametrize("error", FAILURES, ids=lambda e: type(e).__name__)
async def test_any_failure_of_a_row_lookup_or_store_is_a_miss_of_every_row(error):
    cache = cache_raising(error)
    assert await cache.get_many(["row:m:a", "row:m:b"]) == [None, None]
    assert await cache.put_many([("row:m:a", b"v")], 60) == 0


async def test_a_row_value_over_the_size_limit_is_not_stored():
    cache = cache_raising(RuntimeError("no call expected"))
    cache.max_value_bytes = 3
    assert await cache.put_many([("row:m:a", b"four")], 60) == 0
    assert cache.available


async def test_after_a_failure_the_cache_is_skipped_then_tried_again():
    cache = cache_raising(RuntimeError("closed transport"))
    cache.retry_after_s = 60.0
    await cache.get("k")
    assert not cache.available
    cache._skip_until = 0.0
    assert cache.available


async def test_cancellation_propagates():
    cache = cache_raising(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await cache.get("k")

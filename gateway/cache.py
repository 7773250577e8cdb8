"""The prediction cache in Redis: a failure never fails a request, it only skips the cache."""

from __future__ import annotations

import time

import redis.asyncio as redis

from gateway import metrics


class PredictionCache:
    """GET/SET of encoded predictions with short timeouts.

    Any failure of the client, whatever its exception type (RedisError, OSError, a timeout, or
    e.g. uvloop's `RuntimeError: unable to perform operation on <TCPTransport closed=True>` while
    redis-py reconnects), is a cache miss or a skipped store; only cancellation propagates
    (asyncio.CancelledError is a BaseException). After a failure the cache is skipped for
    `retry_after_s` (no request waits on a dead Redis), then tried again: caching resumes by
    itself when Redis is back.
    """

    def __init__(
        self, url: str, timeout_ms: int, max_value_bytes: int, retry_after_s: float
    ) -> None:
        timeout = timeout_ms / 1000
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self.max_value_bytes = max_value_bytes
        self.retry_after_s = retry_after_s
        self._skip_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    async def get(self, key: str) -> bytes | None:
        if not self.available:
            metrics.CACHE_ERRORS.labels("skipped").inc()
            return None
        started = time.perf_counter()
        try:
            return await self.client.get(key)
        except Exception:  # any failure is a miss (see the class docstring)
            self._failed("get")
            return None
        finally:
            metrics.CACHE_LOOKUP_DURATION.observe(time.perf_counter() - started)

    async def put(self, key: str, value: bytes, ttl_s: int) -> bool:
        if ttl_s <= 0 or len(value) > self.max_value_bytes:
            return False
        if not self.available:
            metrics.CACHE_ERRORS.labels("skipped").inc()
            return False
        try:
            await self.client.set(key, value, ex=ttl_s)
            return True
        except Exception:  # any failure skips the store (see the class docstring)
            self._failed("set")
            return False

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The stored values of `keys` in one round trip (MGET), None for each absent one; all
        None on any failure (see the class docstring)."""
        if not self.available:
            metrics.CACHE_ERRORS.labels("skipped").inc()
            return [None] * len(keys)
        started = time.perf_counter()
        try:
            return list(await self.client.mget(keys))
        except Exception:  # any failure is a miss of every key
            self._failed("get")
            return [None] * len(keys)
        finally:
            metrics.CACHE_LOOKUP_DURATION.observe(time.perf_counter() - started)

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: int) -> int:
        """Store each (key, value) for `ttl_s` seconds in one pipeline, values larger than
        `max_value_bytes` left out; the number sent (0 on any failure)."""
        fitting = [(k, v) for k, v in items if len(v) <= self.max_value_bytes]
        if ttl_s <= 0 or not fitting:
            return 0
        if not self.available:
            metrics.CACHE_ERRORS.labels("skipped").inc()
            return 0
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in fitting:
                    pipe.set(key, value, ex=ttl_s)
                await pipe.execute()
            return len(fitting)
        except Exception:  # any failure skips the stores (see the class docstring)
            self._failed("set")
            return 0

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.client.aclose()

    def _failed(self, op: str) -> None:
        metrics.CACHE_ERRORS.labels(op).inc()
        metrics.REDIS_ERRORS.inc()
        self._skip_until = time.monotonic() + self.retry_after_s

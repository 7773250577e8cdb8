"""One prediction: validate -> key -> coalesce identical requests -> Redis -> on a miss, Triton -> store.

Models with `row_cache` on take the same steps per row of the batch (gateway.row_cache).

The HTTP front end (gateway.app) calls it; gateway-grpc (Go) implements the same steps for the
KServe v2 gRPC service, with the same keys and stored values.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway import metrics
from gateway.cache import PredictionCache
from gateway.cache_key import cache_key, row_keys
from gateway.coalescer import Coalescer, flight_key
from gateway.codec import decode_outputs, encode_outputs
from gateway.errors import GatewayError
from gateway.row_cache import RowCache
from gateway.rows import all_finite, check_complete, stack_rows
from gateway.settings import Settings
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TritonPool
from gateway.validation import validate_request

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    outputs: dict[str, Tensor]
    cache_hit: bool  # every row came from the cache
    rows_from_cache: int | None = None  # per-row cache: rows answered from Redis; else None

    @property
    def cache_state(self) -> str:
        """`HIT` (all from the cache), `PARTIAL` (some rows), or `MISS`: the X-Cache header."""
        if self.cache_hit:
            return "HIT"
        return "PARTIAL" if self.rows_from_cache else "MISS"


class PredictionService:
    """The data path of the HTTP front end: one cache client, one coalescer, one Triton pool."""

    def __init__(self, settings: Settings, triton: TritonPool, cache: PredictionCache) -> None:
        self.settings = settings
        self.triton = triton
        self.cache = cache
        self.coalescer: Coalescer[tuple[dict[str, Tensor], bool]] = Coalescer()
        self.row_cache = RowCache(triton, cache)
        self._in_flight = 0
        self._told_unfingerprinted: set[str] = set()

    async def model_info(self, model: str, version: str = "") -> ModelInfo:
        return await self.triton.model_info(model, version)

    @asynccontextmanager
    async def admitted(self):
        """Bound the requests in flight: past `max_in_flight`, refuse at once (load shedding)."""
        if self._in_flight >= self.settings.max_in_flight:
            metrics.SHED.inc()
            raise GatewayError(429, "too many requests in flight, retry shortly", retry_after_s=1)
        self._in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            yield
        finally:
            self._in_flight -= 1
            metrics.IN_FLIGHT.dec()

    async def predict(
        self,
        info: ModelInfo,
        inputs: list[Tensor],
        outputs: list[str] | None = None,
        parameters: dict[str, int] | None = None,
    ) -> Prediction:
        """Answer from the cache or from Triton. `parameters` (priority, timeout) go to Triton and
        are not part of the cache key: they change when and whether an answer comes, never which.
        Identical requests share one call only with equal parameters (coalescer.flight_key)."""
        validate_request(info, inputs, outputs)
        ttl = self._ttl(info)
        if ttl > 0 and info.row_cache and all(t.array.ndim for t in inputs):
            return await self._predict_rows(info, inputs, outputs, parameters, ttl)
        key = cache_key(info.name, info.fingerprint, inputs, outputs or ())
        flight = flight_key(key, parameters)
        try:
            (result, hit), coalesced = await self.coalescer.run(
                flight, lambda: self._lookup(info, inputs, outputs, parameters, key, flight, ttl)
            )
        except (
            Exception
        ):  # only a miss can fail (a failed GET is one): count it, whatever Triton did
            if ttl > 0:
                metrics.CACHE_MISSES.labels(info.name).inc()
            raise
        if coalesced:
            metrics.COALESCED.labels(info.name).inc()
        if ttl > 0:
            (metrics.CACHE_HITS if hit else metrics.CACHE_MISSES).labels(info.name).inc()
        return Prediction(info.name, info.version, result, cache_hit=hit)

    async def _predict_rows(
        self,
        info: ModelInfo,
        inputs: list[Tensor],
        outputs: list[str] | None,
        parameters: dict[str, int] | None,
        ttl: int,
    ) -> Prediction:
        """The per-row cache's answer (gateway.row_cache), counted per request and per row."""
        keys = row_keys(info.name, info.fingerprint, inputs, outputs or ())
        try:
            answered = await self.row_cache.answer(info, keys, inputs, outputs, parameters, ttl)
        except Exception:
            metrics.CACHE_MISSES.labels(info.name).inc()
            metrics.CACHE_ROW_MISSES.labels(info.name).inc(len(keys))
            raise
        hit = answered.hits == len(keys)
        if answered.joined:
            metrics.COALESCED.labels(info.name).inc()
        (metrics.CACHE_HITS if hit else metrics.CACHE_MISSES).labels(info.name).inc()
        metrics.CACHE_ROW_HITS.labels(info.name).inc(answered.hits)
        metrics.CACHE_ROW_MISSES.labels(info.name).inc(len(keys) - answered.hits)
        result = stack_rows(info.name, answered.rows)
        return Prediction(info.name, info.version, result, hit, rows_from_cache=answered.hits)

    def _ttl(self, info: ModelInfo) -> int:
        """The model's cache TTL; 0 for a model without a fingerprint (counted, told once)."""
        ttl = self.settings.ttl_for(info.name)
        if ttl > 0 and not info.fingerprint:
            metrics.CACHE_BYPASSED.labels(info.name, "no_fingerprint").inc()
            if info.name not in self._told_unfingerprinted:
                self._told_unfingerprinted.add(info.name)
                log.warning(
                    "gateway: answers of model '%s' are not cached: the config of '%s' has no "
                    "'fingerprint' parameter. Convert it with `python -m conversion`, or add "
                    'parameters { key: "fingerprint" value { string_value: "<sha256 of the '
                    'model file>" } } to its config.pbtxt.',
                    info.name,
                    info.unfingerprinted or info.name,
                )
            return 0
        return ttl

    async def _lookup(
        self,
        info: ModelInfo,
        inputs: list[Tensor],
        outputs: list[str] | None,
        parameters: dict[str, int] | None,
        key: str,
        flight: str,
        ttl: int,
    ) -> tuple[dict[str, Tensor], bool]:
        """Redis, then on a miss Triton and a write-behind store: made once for identical requests.

        The cache lookup is inside the coalesced call, so no request can miss, wait, and reach
        Triton again after the first answer was stored. An answer holding NaN or Infinity is
        never stored (a model that overflows is not an answer to keep). `key` is the cache key,
        `flight` the coalescing key (coalescer.flight_key) that a store holds.
        """
        if ttl > 0:
            cached = await self.cache.get(key)
            if cached is not None:
                try:
                    return decode_outputs(cached), True
                except ValueError:  # a value this gateway did not write: ignore it, overwrite it
                    metrics.CACHE_ERRORS.labels("decode").inc()
        result = await self.triton.infer(info, inputs, outputs, parameters)
        check_complete(result, outputs or info.outputs)
        if ttl > 0 and not all_finite(result.values()):
            metrics.CACHE_BYPASSED.labels(info.name, "non_finite").inc()
        elif ttl > 0:
            store = asyncio.ensure_future(self.cache.put(key, encode_outputs(result), ttl))
            self.coalescer.hold(flight, store)
        return result, False

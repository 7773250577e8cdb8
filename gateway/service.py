"""One prediction: validate -> key -> coalesce identical requests -> Redis -> on a miss, Triton -> store."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway import metrics
from gateway.cache import PredictionCache
from gateway.cache_key import cache_key
from gateway.coalescer import Coalescer
from gateway.codec import decode_outputs, encode_outputs
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TritonPool
from gateway.validation import validate_request


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    outputs: dict[str, Tensor]
    cache_hit: bool


class PredictionService:
    """Shared by the HTTP and gRPC front ends, so both use one cache and one coalescer."""

    def __init__(self, settings: Settings, triton: TritonPool, cache: PredictionCache) -> None:
        self.settings = settings
        self.triton = triton
        self.cache = cache
        self.coalescer: Coalescer[tuple[dict[str, Tensor], bool]] = Coalescer()
        self._in_flight = 0

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
        self, info: ModelInfo, inputs: list[Tensor], outputs: list[str] | None = None
    ) -> Prediction:
        validate_request(info, inputs, outputs)
        ttl = self.settings.ttl_for(info.name)
        key = cache_key(info.name, info.fingerprint, inputs, outputs or ())
        try:
            (result, hit), coalesced = await self.coalescer.run(
                key, lambda: self._lookup(info, inputs, outputs, key, ttl)
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

    async def _lookup(
        self, info: ModelInfo, inputs: list[Tensor], outputs: list[str] | None, key: str, ttl: int
    ) -> tuple[dict[str, Tensor], bool]:
        """Redis, then on a miss Triton and a write-behind store: made once for identical requests.

        The cache lookup is inside the coalesced call, so no request can miss, wait, and reach
        Triton again after the first answer was stored.
        """
        if ttl > 0:
            cached = await self.cache.get(key)
            if cached is not None:
                try:
                    return decode_outputs(cached), True
                except ValueError:  # a value this gateway did not write: ignore it, overwrite it
                    metrics.CACHE_ERRORS.labels("decode").inc()
        result = await self.triton.infer(info, inputs, outputs)
        expected = set(outputs or info.outputs)
        if set(result) != expected:
            raise GatewayError(
                502, f"incomplete response from Triton: {sorted(result)} != {sorted(expected)}"
            )
        if ttl > 0:
            store = asyncio.ensure_future(self.cache.put(key, encode_outputs(result), ttl))
            self.coalescer.hold(key, store)
        return result, False

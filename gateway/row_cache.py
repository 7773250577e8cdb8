"""The per-row prediction cache (docs/cache.md): a batched request pays Triton only for new rows.

For a model with `row_cache` on (gateway.model_config.row_cache): one key per row
(gateway.cache_key.row_keys); identical rows of one request are looked up and computed once; rows
another request is already working on are joined (per-row coalescing, gateway.coalescer.RowFlights);
the rest are looked up in one MGET, and those Redis lacks go to Triton as one request in their
original order. Each computed row is stored on its own (per-row TTL and value-size limit, never
a row holding NaN or Infinity), and the answer is stacked back in request order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway import metrics
from gateway.cache import PredictionCache
from gateway.coalescer import RowFlights, flight_group
from gateway.codec import decode_outputs, encode_outputs
from gateway.rows import Row, all_finite, check_complete, output_names, pick_rows, split_rows
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TritonPool


@dataclass(frozen=True)
class RowAnswer:
    """One row of a model's outputs (each without the batch axis) and where it came from."""

    row: Row
    hit: bool  # read from Redis (by this request or by the one it joined)


@dataclass(frozen=True)
class RowsAnswered:
    """A batched request's answer: the rows stacked in request order, how many came from Redis."""

    rows: list[Row]
    hits: int
    joined: bool  # some row was being computed for another request


class RowCache:
    """Answers batched requests row by row from Redis and Triton (see the module docstring)."""

    def __init__(self, triton: TritonPool, cache: PredictionCache) -> None:
        self.triton = triton
        self.cache = cache
        self.flights: RowFlights[RowAnswer] = RowFlights()
        self._work: set[asyncio.Task] = set()

    async def answer(
        self,
        info: ModelInfo,
        keys: list[str],
        inputs: list[Tensor],
        outputs: list[str] | None,
        parameters: dict[str, int] | None,
        ttl: int,
    ) -> RowsAnswered:
        """The rows of `inputs` (shape `[batch, ...]`, `keys[i]` the key of row i), in order.

        Raises what Triton's call for the missing rows raised (GatewayError), also in every
        request that joined one of those rows.
        """
        first: dict[str, int] = {}
        for row, key in enumerate(keys):
            first.setdefault(key, row)
        group = flight_group(parameters)  # a row is joined only under equal parameters
        futures, claimed = self.flights.claim(list(first), group)
        if claimed:
            work = asyncio.ensure_future(
                self._fill(
                    info,
                    {key: first[key] for key in claimed},
                    {key: futures[key] for key in claimed},
                    inputs,
                    outputs,
                    parameters,
                    ttl,
                    group,
                )
            )
            self._work.add(work)  # the loop keeps only weak references to tasks
            work.add_done_callback(self._work.discard)
        answers = await asyncio.gather(*(asyncio.shield(f) for f in futures.values()))
        by_key = dict(zip(futures, answers, strict=True))
        rows = [by_key[key] for key in keys]
        return RowsAnswered(
            [a.row for a in rows], sum(a.hit for a in rows), len(claimed) < len(futures)
        )

    async def _fill(
        self,
        info: ModelInfo,
        rows: dict[str, int],
        futures: dict[str, asyncio.Future[RowAnswer]],
        inputs: list[Tensor],
        outputs: list[str] | None,
        parameters: dict[str, int] | None,
        ttl: int,
        group: str,
    ) -> None:
        """Settle the claimed rows (`rows`: key -> its first row in the request): from one MGET,
        the rest from one Triton request in request order; store those, then release them."""
        names = output_names(info, outputs)
        stored = None
        try:
            missing = []
            for key, value in zip(rows, await self.cache.get_many(list(rows)), strict=True):
                cached = _decoded(value, names)
                if cached is None:
                    missing.append(key)
                else:
                    futures[key].set_result(RowAnswer(cached, hit=True))
            if missing:
                batch = pick_rows(inputs, [rows[key] for key in missing])
                result = await self.triton.infer(info, batch, outputs, parameters)
                check_complete(result, names)
                computed = split_rows(result, len(missing))
                for key, row in zip(missing, computed, strict=True):
                    futures[key].set_result(RowAnswer(row, hit=False))
                stored = self._store(info, list(zip(missing, computed, strict=True)), ttl)
        except Exception as error:  # every row not yet answered fails with it
            for future in futures.values():
                if not future.done():
                    future.set_exception(error)
        finally:
            for future in futures.values():
                if not future.done():  # cancelled (the loop is closing)
                    future.cancel()
            self.flights.release(futures, stored, group)

    def _store(self, info: ModelInfo, rows: list[tuple[str, Row]], ttl: int) -> asyncio.Future:
        """Write the finite rows behind the answer (one pipeline); rows holding NaN or Infinity
        are not stored and counted once per Triton answer."""
        items = [(key, encode_outputs(row)) for key, row in rows if all_finite(row.values())]
        if len(items) < len(rows):
            metrics.CACHE_BYPASSED.labels(info.name, "non_finite").inc()
        return asyncio.ensure_future(self.cache.put_many(items, ttl))


def _decoded(value: bytes | None, names: list[str]) -> Row | None:
    """A stored row holding exactly `names`; None when absent or not a value a gateway wrote."""
    if value is None:
        return None
    try:
        row = decode_outputs(value)
    except ValueError:
        row = None
    if row is None or set(row) != set(names):
        metrics.CACHE_ERRORS.labels("decode").inc()
        return None
    return row

"""Coalescing of identical in-flight requests (one call per key, its result or error to all
waiters) and of identical rows of batched requests (RowFlights, for the per-row cache)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


def flight_group(parameters: Mapping[str, int] | None) -> str:
    """The part of a coalescing key that the request's forwarded parameters (KServe v2
    `priority`, `timeout`) make: "" without any, else e.g. "priority=1;timeout=500".

    Only requests that ask Triton the same way share one call: a joiner must not inherit another
    request's deadline (a 1 us `timeout` answered 429 to every request that joined it) or its
    queue priority. The cache key leaves them out: they decide when and whether, never which."""
    return ";".join(f"{name}={value}" for name, value in sorted((parameters or {}).items()))


def flight_key(key: str, parameters: Mapping[str, int] | None) -> str:
    """`key` (a cache key) for requests without forwarded parameters, else `key|<flight_group>`."""
    group = flight_group(parameters)
    return f"{key}|{group}" if group else key


class Coalescer(Generic[T]):
    """The first caller for a key starts `call` as a task; later callers await that same task.

    The task is shielded, so a caller that is cancelled (client went away) neither cancels the
    call for the others nor loses its result for them.
    """

    def __init__(self) -> None:
        self._in_flight: dict[str, asyncio.Task[T]] = {}
        self._holds: dict[str, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return `(result, coalesced)`; `coalesced` is True when another caller made the call."""
        task = self._in_flight.get(key)
        coalesced = task is not None
        if task is None:
            task = asyncio.ensure_future(call())
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task), coalesced

    def hold(self, key: str, until: asyncio.Future) -> None:
        """Let newcomers for `key` take the finished call's result until `until` is done.

        The caller's answer need not wait for its cache write, and no identical request can slip
        between the answer and the write: it joins the finished call instead of missing again.
        """
        self._holds[key] = until
        until.add_done_callback(lambda _: self._release(key, until))

    def _release(self, key: str, until: asyncio.Future) -> None:
        if self._holds.get(key) is until:
            del self._holds[key]
            task = self._in_flight.get(key)
            if task is not None and task.done():
                del self._in_flight[key]

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._in_flight.get(key) is task and key not in self._holds:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters that went away must not log a warning


class RowFlights(Generic[T]):
    """Coalescing per row: one future per row key, claimed by the first request that needs it.

    A request claims the keys nobody is working on and joins the futures of the others; it
    settles its claimed futures (result or exception) and releases them, at once or once their
    cache writes are done, so a request arriving between an answer and its store joins the
    finished future instead of computing the row again.
    """

    def __init__(self) -> None:
        self._futures: dict[tuple[str, str], asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def claim(
        self, keys: list[str], group: str = ""
    ) -> tuple[dict[str, asyncio.Future[T]], list[str]]:
        """({key: its future} for every key, [the keys this caller must settle], in key order).

        Only a flight of the same `group` (flight_group of the request's parameters) is joined."""
        loop = asyncio.get_running_loop()
        futures, claimed = {}, []
        for key in keys:
            future = self._futures.get((group, key))
            if future is None:
                future = self._futures[group, key] = loop.create_future()
                claimed.append(key)
            futures[key] = future
        return futures, claimed

    def release(
        self,
        futures: dict[str, asyncio.Future[T]],
        after: asyncio.Future | None,
        group: str = "",
    ) -> None:
        """Forget the settled `futures` (claimed in `group`) now, or once `after` (their cache
        writes) is done."""
        if after is not None and not after.done():
            after.add_done_callback(lambda _: self.release(futures, None, group))
            return
        for key, future in futures.items():
            if self._futures.get((group, key)) is future:
                del self._futures[group, key]
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: a failure nobody waited for logs no warning

"""Coalescing of identical in-flight requests: one call per key, its result or error to all waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


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

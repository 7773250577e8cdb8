"""Identical in-flight calls are made once; the result or the error reaches every waiter."""

import asyncio

import pytest

from gateway.coalescer import Coalescer, flight_key


async def test_concurrent_callers_of_one_key_share_one_call():
    calls = 0
    release = asyncio.Event()

    async def call():
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    coalescer = Coalescer()
    waiters = [asyncio.create_task(coalescer.run("k", call)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters)
    assert calls == 1
    assert [r for r, _ in results] == ["answer"] * 10
    assert sorted(c for _, c in results) == [False] + [True] * 9
    assert len(coalescer) == 0


async def test_an_error_is_fanned_out_to_every_waiter_and_not_remembered():
    coalescer = Coalescer()

    async def failing():
        await asyncio.sleep(0.01)
        raise RuntimeError("triton said no")

    results = await asyncio.gather(
        *(coalescer.run("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) and str(r) == "triton said no" for r in results)

    async def succeeding():
        return 42

    assert await coalescer.run("k", succeeding) == (42, False)


async def test_different_keys_do_not_wait_for_each_other():
    coalescer = Coalescer()
    calls = []

    async def call(key):
        calls.append(key)
        return key

    results = await asyncio.gather(
        coalescer.run("a", lambda: call("a")), coalescer.run("b", lambda: call("b"))
    )
    assert [r for r, _ in results] == ["a", "b"]
    assert sorted(calls) == ["a", "b"]


async def test_a_cancelled_first_caller_does_not_cancel_the_call_for_the_others():
    coalescer = Coalescer()
    release = asyncio.Event()

    async def call():
        await release.wait()
        return "done"

    first = asyncio.create_task(coalescer.run("k", call))
    await asyncio.sleep(0)
    second = asyncio.create_task(coalescer.run("k", call))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == ("done", True)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_held_key_answers_newcomers_from_the_finished_call_until_released():
    coalescer = Coalescer()
    stored = asyncio.get_running_loop().create_future()
    calls = 0

    async def call():
        nonlocal calls
        calls += 1
        coalescer.hold("k", stored)
        return "answer"

    assert await coalescer.run("k", call) == ("answer", False)
    assert await coalescer.run("k", call) == ("answer", True)  # the cache write is still pending
    stored.set_result(True)
    await asyncio.sleep(0)
    assert await coalescer.run("k", call) == ("answer", False)
    assert calls == 2


def test_a_flight_key_is_the_cache_key_without_parameters_and_names_them_in_order_with():
    assert flight_key("k", None) == flight_key("k", {}) == "k"
    assert flight_key("k", {"timeout": 5, "priority": 1}) == "k|priority=1;timeout=5"
    assert flight_key("k", {"priority": 1}) != flight_key("k", {"priority": 2})

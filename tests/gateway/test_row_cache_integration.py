"""The per-row cache against real Redis, Triton and both gateways: only new rows reach Triton,
text ensembles are cached per sentence, rows are stored with their TTL, answers come back in
request order and say how many rows the cache served."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import redis

from tests.conftest import until_hit
from tests.gateway.row_wire import via_grpc, via_http

pytestmark = pytest.mark.integration

rng = np.random.default_rng(1717)


def images(count: int) -> np.ndarray:
    """Rows no other test sent."""
    return rng.random((count, 1, 8, 8), dtype=np.float32)


def sentences(*words: str) -> np.ndarray:
    return np.array([[w.encode()] for w in words], dtype=object)


SENDERS = {
    "HTTP": lambda stack, model, inputs: via_http(stack.gateway_url, model, inputs),
    "gRPC": lambda stack, model, inputs: via_grpc(stack.gateway_grpc_url, model, inputs),
}


@pytest.mark.parametrize("protocol", SENDERS)
def test_a_cached_row_is_not_sent_to_triton_again(stack, protocol):
    send = SENDERS[protocol]
    seen = images(2)
    until_hit(lambda: send(stack, "digits", {"image": seen}), lambda a: a.cache)
    new = images(1)
    before = stack.triton_inferences()
    mixed = np.concatenate([seen[1:], new, seen[:1]])
    answer = send(stack, "digits", {"image": mixed})
    assert (answer.cache, answer.hit_rows) == ("PARTIAL", 2)
    assert stack.triton_inferences_since(before) == 1
    direct = via_grpc(stack.triton_grpc_url, "digits", {"image": mixed})
    np.testing.assert_allclose(answer.outputs["logits"], direct.outputs["logits"], atol=1e-5)


@pytest.mark.parametrize("protocol", SENDERS)
def test_a_text_ensemble_is_cached_per_sentence(stack, protocol):
    send = SENDERS[protocol]
    seen = sentences(f"rows are cached one by one ({protocol})", f"a second sentence ({protocol})")
    until_hit(lambda: send(stack, "minilm_text", {"text": seen}), lambda a: a.cache)
    before = stack.triton_inferences("minilm_text")
    mixed = np.concatenate([seen[1:], sentences(f"one new sentence ({protocol})"), seen[:1]])
    answer = send(stack, "minilm_text", {"text": mixed})
    assert (answer.cache, answer.hit_rows) == ("PARTIAL", 2)
    assert stack.triton_inferences_since(before, "minilm_text") == 1
    assert answer.outputs["embedding"].shape == (3, 384)


def test_both_gateways_share_row_entries_stored_with_their_ttl(stack):
    rows = images(2)
    first = via_http(stack.gateway_url, "digits", {"image": rows})
    again = until_hit(
        lambda: via_grpc(stack.gateway_grpc_url, "digits", {"image": rows[::-1]}),
        lambda a: a.cache,
    )
    assert again.outputs["logits"].tobytes() == first.outputs["logits"][::-1].tobytes()
    client = redis.Redis.from_url(stack.redis_url)
    keys = client.keys("row:digits:*")
    assert keys and all(0 < client.ttl(key) <= 3600 for key in keys)


@pytest.mark.parametrize("protocol", SENDERS)
def test_concurrent_overlapping_requests_compute_each_row_once(stack, protocol):
    """Within one gateway process a row is computed once however requests overlap: the first
    claims it, the others join it until it is stored, and later ones find it in Redis."""
    send = SENDERS[protocol]
    pool = images(6)
    orders = np.random.default_rng(17).permuted(np.tile(np.arange(6), (8, 1)), axis=1)[:, :4]
    before = stack.triton_inferences()
    with ThreadPoolExecutor(8) as threads:
        answers = list(
            threads.map(lambda rows: send(stack, "digits", {"image": pool[rows]}), orders)
        )
    assert stack.triton_inferences_since(before) == len(set(orders.ravel()))
    for rows, answer in zip(orders, answers, strict=True):
        alone = via_grpc(stack.triton_grpc_url, "digits", {"image": pool[rows]})
        np.testing.assert_array_equal(answer.outputs["logits"], alone.outputs["logits"])


def test_with_redis_down_batches_are_answered_uncached_on_both_gateways(make_stack):
    stack = make_stack(GATEWAY_REDIS_RETRY_AFTER_S="0.2", GATEWAY_REDIS_TIMEOUT_MS="200")
    rows = images(3)
    stack.local.stop_component("redis", signal.SIGKILL)
    direct = via_grpc(stack.triton_grpc_url, "digits", {"image": rows}).outputs["logits"]
    for protocol, send in SENDERS.items():
        for _ in range(2):  # the second, too: nothing was stored
            answer = send(stack, "digits", {"image": rows})
            assert (answer.cache, answer.hit_rows) == ("MISS", 0), protocol
            np.testing.assert_array_equal(answer.outputs["logits"], direct)
    stack.local.start_component("redis")
    for send in SENDERS.values():
        until_hit(lambda send=send: send(stack, "digits", {"image": rows}), lambda a: a.cache)

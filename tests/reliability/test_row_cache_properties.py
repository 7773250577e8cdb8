"""Properties of the per-row cache over real Redis, Triton and both gateways (issue 17.3).

Random batches drawn from a pool of rows (so they mix rows cached, not yet cached and repeated
within the batch, in random order), alone or several at once over HTTP and gRPC. Every row of
every answer must be the model's answer for that row as Triton direct gives it (within the
deviation a row may show between batches: docs/cache.md measures it), a row answered before must
come back with exactly the bytes of its first answer, and the cache headers must agree with what
the batch could have found in the cache.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import until_hit
from tests.gateway.row_wire import Answered, via_grpc, via_http

pytestmark = pytest.mark.integration

IMAGES = np.random.default_rng(1703).random((24, 1, 8, 8), dtype=np.float32)
SENTENCES = [f"property row {i}: the cache keeps {i * 7 % 11} sentences apart" for i in range(12)]
# Largest deviation a row may show between batches (FP32, measured far below: docs/cache.md).
TOLERANCE = 1e-4
EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Model:
    """One model's pool of rows, its answers from Triton direct, and the first answer a gateway
    gave for each row (bytes), kept across examples as Redis keeps the rows."""

    def __init__(self, name: str, input_name: str, output: str, pool: np.ndarray) -> None:
        self.name, self.input_name, self.output, self.pool = name, input_name, output, pool
        self.direct: dict[int, np.ndarray] = {}
        self.first: dict[int, bytes] = {}

    def batch(self, rows: list[int]) -> dict[str, np.ndarray]:
        return {self.input_name: self.pool[rows]}

    def send(self, stack, protocol: str, rows: list[int]) -> Answered:
        if protocol == "HTTP":
            return via_http(stack.gateway_url, self.name, self.batch(rows))
        return via_grpc(stack.gateway_grpc_url, self.name, self.batch(rows))

    def alone(self, stack, row: int) -> np.ndarray:
        """Triton direct's answer for the row sent alone."""
        if row not in self.direct:
            answer = via_grpc(stack.triton_grpc_url, self.name, self.batch([row]))
            self.direct[row] = answer.outputs[self.output][0]
        return self.direct[row]

    def check(self, stack, rows: list[int], answer: Answered) -> None:
        """Every row is Triton's answer for it; a row answered before has its first bytes; the
        headers agree with the rows that could have come from the cache."""
        values = answer.outputs[self.output]
        assert values.shape[0] == len(rows)
        seen = sum(row in self.first for row in rows)
        for position, row in enumerate(rows):
            np.testing.assert_allclose(values[position], self.alone(stack, row), atol=TOLERANCE)
            if row in self.first:
                assert values[position].tobytes() == self.first[row], f"row {row} changed"
        assert answer.hit_rows is not None and 0 <= answer.hit_rows <= seen
        state = {0: "MISS", len(rows): "HIT"}.get(answer.hit_rows, "PARTIAL")
        assert answer.cache == state
        for position, row in enumerate(rows):
            self.first.setdefault(row, values[position].tobytes())


DIGITS = Model("digits", "image", "logits", IMAGES)
TEXT = Model(
    "minilm_text",
    "text",
    "embedding",
    np.array([[s.encode()] for s in SENTENCES], dtype=object),
)
protocols = st.sampled_from(["HTTP", "gRPC"])


def batches(model: Model, most: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(model.pool) - 1), min_size=1, max_size=most)


@EXAMPLES
@given(rows=batches(DIGITS, 12), protocol=protocols)
def test_every_row_of_a_digits_batch_is_the_models_answer_for_it(stack, rows, protocol):
    DIGITS.check(stack, rows, DIGITS.send(stack, protocol, rows))


@settings(EXAMPLES, max_examples=6)
@given(rows=batches(TEXT, 5), protocol=protocols)
def test_every_sentence_of_a_text_batch_is_the_models_answer_for_it(stack, rows, protocol):
    TEXT.check(stack, rows, TEXT.send(stack, protocol, rows))


@settings(EXAMPLES, max_examples=8)
@given(requests=st.lists(st.tuples(batches(DIGITS, 8), protocols), min_size=2, max_size=4))
def test_concurrent_overlapping_batches_each_get_every_row_right(stack, requests):
    """Rows new to the round may be computed by both gateways at once (each coalesces its own
    requests), so a new row's answers agree within the tolerance; once stored, one of them is
    what every later request gets, exactly."""
    earlier = dict(DIGITS.first)
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda r: DIGITS.send(stack, r[1], r[0]), requests))
    given_bytes: dict[int, set[bytes]] = {}
    for index, ((rows, _), answer) in enumerate(zip(requests, answers, strict=True)):
        for position, row in enumerate(rows):
            value = answer.outputs["logits"][position]
            np.testing.assert_allclose(value, DIGITS.alone(stack, row), atol=TOLERANCE)
            if row in earlier:
                assert value.tobytes() == earlier[row]
            given_bytes.setdefault(row, set()).add(value.tobytes())
        # a hit is a row stored before the round, or one a concurrent request stored first
        others = {r for i, (o, _) in enumerate(requests) if i != index for r in o}
        could_hit = sum(r in earlier or r in others for r in rows)
        assert answer.hit_rows is not None and answer.hit_rows <= could_hit
    new = sorted(set(given_bytes) - set(earlier))
    if new:
        stored = until_hit(lambda: DIGITS.send(stack, "HTTP", new), lambda a: a.cache)
        for position, row in enumerate(new):
            assert stored.outputs["logits"][position].tobytes() in given_bytes[row]
            DIGITS.first[row] = stored.outputs["logits"][position].tobytes()

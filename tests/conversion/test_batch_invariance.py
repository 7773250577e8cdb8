"""Batch invariance: a row answered alone and inside random batches of padded mates."""

from __future__ import annotations

import numpy as np
import pytest

from conversion import batch_invariance, gate
from conversion.settings import GateSettings
from conversion.spec import Dataset, OutputSpec

EMBEDDING = (OutputSpec("embedding", "embedding"),)


def text_like(lengths: tuple[int, ...], rows: int = 4, seed: int = 0) -> Dataset:
    """Batches of `rows` rows per length: ids and a mask of ones, as the tokenizer buckets them."""
    rng = np.random.default_rng(seed)
    batches = []
    for length in lengths:
        ids = rng.integers(1, 100, size=(rows, length))
        batches.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    return Dataset(batches)


def masked_mean(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row-wise: the mean of each row's unmasked ids (padding cannot move it)."""
    mask = batch["attention_mask"]
    total = (batch["input_ids"] * mask).sum(axis=1, keepdims=True)
    return {"embedding": np.hstack([total / mask.sum(axis=1, keepdims=True), np.ones_like(total)])}


def scaled_by_the_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Like dynamic INT8: each row rounded on a grid set by the largest value in the whole batch."""
    values = masked_mean(batch)["embedding"]
    step = np.abs(values).max() / 7
    return {"embedding": np.round(values / step) * step}


def test_every_row_lands_in_a_random_batch_with_mates():
    groups = batch_invariance.random_batches(17, 8, seed=3)
    assert sorted(np.concatenate(groups).tolist()) == list(range(17))
    assert min(len(g) for g in groups) > 1


def test_rows_of_different_lengths_are_zero_padded_to_the_longest():
    rows = [{"ids": np.array([1, 2])}, {"ids": np.array([3, 4, 5, 6])}]
    batch = batch_invariance.pad_stack(rows)
    assert batch["ids"].tolist() == [[1, 2, 0, 0], [3, 4, 5, 6]]


def test_a_scalar_input_per_row_is_stacked_as_it_is():
    rows = [{"category": np.array(2)}, {"category": np.array(5)}]
    assert batch_invariance.pad_stack(rows)["category"].tolist() == [2, 5]


def test_a_longer_padded_answer_is_compared_on_the_length_of_the_answer_alone():
    alone = np.array([[1.0, 2.0]])
    assert batch_invariance.deviation(alone, np.array([[1.0, 2.0], [9.0, 9.0]])) == 0.0
    assert batch_invariance.deviation(np.array([3, 4]), np.array([3, 5])) == 1.0


def test_a_model_that_answers_row_by_row_is_batch_invariant():
    dataset = text_like((3, 5, 9))
    assert batch_invariance.measure(masked_mean, dataset, EMBEDDING) == {"embedding": 0.0}


def test_a_model_that_scales_by_its_batch_is_measured_as_batch_dependent():
    dataset = text_like((3, 5, 9))
    worst = batch_invariance.measure(scaled_by_the_batch, dataset, EMBEDDING)["embedding"]
    assert worst > GateSettings().max_batch_dependence


def test_the_gate_refuses_a_variant_whose_answers_depend_on_its_batch_mates():
    values = {"embedding": {"max_abs_deviation": 0.0, "batch_dependence": 0.05}}
    verdict = gate.judge("int8_dynamic", EMBEDDING, values, GateSettings())
    assert verdict.batch_dependent
    assert verdict.reasons[0].startswith("embedding: batch dependence 0.05 > 0.01")


@pytest.mark.parametrize("fp32_dependence, passed", [(0.0, False), (0.045, True)])
def test_the_gate_allows_what_fp32_itself_shows_on_top_of_the_tolerance(fp32_dependence, passed):
    values = {"embedding": {"max_abs_deviation": 0.0, "batch_dependence": 0.05}}
    baseline = {"embedding": fp32_dependence}
    verdict = gate.judge("fp16", EMBEDDING, values, GateSettings(), baseline=baseline)
    assert verdict.passed is passed

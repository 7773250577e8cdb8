"""Batch invariance: does a model answer a row the same alone and inside a batch of others?

Under Triton's dynamic batching one client's request shares an execution with whatever else is
queued, and the gateway caches the answer; a variant whose answer to a row depends on its
batch-mates (ONNX Runtime's dynamic INT8 scales activations over the whole batch) makes one
client's input change another's answer, and a cached answer depend on who shared its batch.

`measure` answers every validation row alone (a batch of one, at its own padded length) and
inside random batches of other rows from every length (each row padded with zeros to the
longest in its batch, as the tokenizer pads to a bucket), and returns, per output, the worst
deviation of a row's in-batch answer from its answer alone (`deviation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from conversion.spec import Dataset, OutputSpec

BATCH_ROWS = 8  # rows per random batch
Call = Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]


def dataset_rows(dataset: Dataset) -> list[dict[str, np.ndarray]]:
    """Every row of the dataset as {input: array without the batch axis}, in order."""
    return [
        {name: array[i] for name, array in batch.items()}
        for batch in dataset.batches
        for i in range(len(next(iter(batch.values()))))
    ]


def pad_stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch of `rows`: each input zero-padded at the end of every axis to the largest size."""
    batch = {}
    for name in rows[0]:
        arrays = [row[name] for row in rows]
        if arrays[0].ndim:  # a scalar per row (an input of shape [batch]) has nothing to pad
            shape = np.max([a.shape for a in arrays], axis=0)
            arrays = [
                np.pad(a, [(0, s - d) for s, d in zip(shape, a.shape, strict=True)]) for a in arrays
            ]
        batch[name] = np.stack(arrays)
    return batch


def random_batches(count: int, size: int, seed: int) -> list[np.ndarray]:
    """The row indices 0..count-1 shuffled and cut into batches of `size` (the last may be
    smaller; a lone last row joins the batch before it, so every row has mates)."""
    order = np.random.default_rng(seed).permutation(count)
    groups = [order[start : start + size] for start in range(0, count, size)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [np.concatenate(groups[-2:])]
    return groups


def deviation(alone: np.ndarray, in_batch: np.ndarray) -> float:
    """How far one row's in-batch answer is from its answer alone: ||in_batch - alone|| /
    ||alone|| (relative L2; 0 = equal; 0.01 is a cosine of about 0.99995) for floating-point
    outputs, 0 or 1 (unequal) for integer ones. A longer padded answer (per-token outputs) is
    cut to the shape of the answer alone first."""
    in_batch = in_batch[tuple(slice(0, size) for size in alone.shape)]
    if not np.issubdtype(alone.dtype, np.floating):
        return float(not np.array_equal(alone, in_batch))
    a, b = alone.astype(np.float64), in_batch.astype(np.float64)
    return float(np.linalg.norm(b - a) / (np.linalg.norm(a) + 1e-12))


def measure(
    call: Call,
    dataset: Dataset,
    outputs: tuple[OutputSpec, ...],
    batch_rows: int = BATCH_ROWS,
    seed: int = 0,
) -> dict[str, float]:
    """{output name: worst `deviation` over every row} of `call` (inputs -> {output: array}).

    Costs one call per row plus one per `batch_rows` rows. A dataset of one row gives 0.
    """
    rows = dataset_rows(dataset)
    worst = {o.name: 0.0 for o in outputs}
    if len(rows) < 2:
        return worst
    for group in random_batches(len(rows), batch_rows, seed):
        together = call(pad_stack([rows[i] for i in group]))
        for position, index in enumerate(group):
            alone = call({name: array[None] for name, array in rows[index].items()})
            for o in outputs:
                gap = deviation(
                    np.asarray(alone[o.name])[0], np.asarray(together[o.name])[position]
                )
                worst[o.name] = max(worst[o.name], gap)
    return worst

"""The accuracy gate: every output of a model judged on the held-out validation set.

Each variant is judged against the FP32 ONNX model, and the FP32 ONNX model against PyTorch on
the same data, called by name: an output that is swapped or mislabelled, or an export that
matched PyTorch on the sample rows only, fails there. The metric follows each output's task:

* classification: top-1 agreement with the reference and, with labels, accuracy and its drop;
* embedding: mean and min cosine, and nearest-neighbour ranking agreement;
* regression: mean and max absolute deviation;
* integer outputs (ids, argmax): the share of rows equal to the reference.
Every output also records its max |candidate - reference| and its `batch_dependence`: the worst
relative deviation of a row answered inside random batches from the same row answered alone
(conversion.batch_invariance); a variant above `max_batch_dependence` (beyond FP32's own) fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from conversion import batch_invariance
from conversion.settings import GateSettings
from conversion.spec import Dataset, OutputSpec, SpecError

RANKING_ROWS = 4096  # nearest-neighbour agreement on at most this many rows (an N x N matrix)


def session(path: Path, threads: int = 0, precision: str | None = None):
    """An ORT CPU session (ENABLE_ALL online, `threads` intra-op threads, 0 = ORT's default);
    for an OpenVINO IR (`.xml`) an `openvino_variants.CompiledModel`, which runs the same way
    (`run(output names, feed) -> list of arrays`), with its float layers in `precision` when
    given (e.g. "f32"; ORT sessions ignore it)."""
    if path.suffix == ".xml":
        from conversion.openvino_variants import CompiledModel

        return CompiledModel(path, threads, precision)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rows(task: str, array: np.ndarray) -> np.ndarray:
    """What a metric compares: [rows, last axis] for classification and embedding (a token
    classifier's [batch, sequence, labels] gives one row per token), flat values for regression."""
    if task == "regression" or array.ndim < 2:
        return array.reshape(-1)
    return array.reshape(-1, array.shape[-1])


Outputs = dict[str, np.ndarray]


def collect(
    call: Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]],
    dataset: Dataset,
    outputs: tuple[OutputSpec, ...],
    progress: Callable[[], None] | None = None,
) -> Outputs:
    """Every output of `call` over the dataset's batches, as rows, concatenated by name."""
    chunks: dict[str, list[np.ndarray]] = {o.name: [] for o in outputs}
    for batch in dataset.batches:
        answer = call(batch)
        for output in outputs:
            chunks[output.name].append(rows(output.task, np.asarray(answer[output.name])))
        if progress:
            progress()
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def run(
    path: Path,
    dataset: Dataset,
    outputs: tuple[OutputSpec, ...],
    progress: Callable[[], None] | None = None,
    precision: str | None = None,
) -> Outputs:
    """The model's outputs over the dataset (see `collect`; `precision`: see `session`)."""
    return collect(caller(path, outputs, precision), dataset, outputs, progress)


def caller(
    path: Path, outputs: tuple[OutputSpec, ...], precision: str | None = None
) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """A function {input: array} -> {output: array} running the model at `path` (see `session`)."""
    sess = session(path, precision=precision)
    names = [o.name for o in outputs]
    return lambda batch: dict(zip(names, sess.run(names, batch), strict=True))


def batch_dependence(
    path: Path, dataset: Dataset, outputs: tuple[OutputSpec, ...]
) -> dict[str, float]:
    """{output: worst deviation of a row inside random batches from the row alone} of the model
    at `path` over every row of `dataset` (conversion.batch_invariance.measure)."""
    return batch_invariance.measure(caller(path, outputs), dataset, outputs)


def check_labels(
    outputs: tuple[OutputSpec, ...], reference: Outputs, labels: np.ndarray | None
) -> None:
    """Labels must fit every classification output: one per row, each below its class count.

    Raises SpecError naming the output otherwise (a mislabelled or swapped output shows here).
    """
    if labels is None:
        return
    for output in outputs:
        values = reference[output.name]
        if output.task != "classification" or not np.issubdtype(values.dtype, np.floating):
            continue
        if len(labels) != len(values):
            raise SpecError(
                f"validation has {len(labels)} labels, output '{output.name}' has {len(values)} rows"
            )
        classes = values.shape[1] if values.ndim == 2 else 1
        if labels.min() < 0 or labels.max() >= classes:
            raise SpecError(
                f"validation labels go from {labels.min()} to {labels.max()}, but output "
                f"'{output.name}' has {classes} classes: is it the classification output? "
                f"(mark other outputs :regression or :embedding)"
            )


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _nearest(embeddings: np.ndarray) -> np.ndarray:
    e = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
    similarity = e @ e.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argmax(similarity, axis=1)


def output_metrics(
    task: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None
) -> dict[str, float]:
    """The metrics of one output (rows from `rows`) against its reference."""
    gap = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    out = {"max_abs_deviation": float(np.max(gap)) if gap.size else 0.0}
    if not np.issubdtype(reference.dtype, np.floating):
        equal = (reference == candidate).reshape(len(reference), -1).all(axis=1)
        out["exact_agreement"] = float(np.mean(equal))
    elif task == "classification":
        ref, got = reference.reshape(len(reference), -1), candidate.reshape(len(candidate), -1)
        out["top1_agreement"] = float(np.mean(np.argmax(ref, 1) == np.argmax(got, 1)))
        if labels is not None:
            out["reference_accuracy"] = float(np.mean(np.argmax(ref, 1) == labels))
            out["accuracy"] = float(np.mean(np.argmax(got, 1) == labels))
            out["accuracy_drop"] = out["reference_accuracy"] - out["accuracy"]
    elif task == "embedding":
        cosine = _cosine(reference, candidate)
        out["mean_cosine"] = float(np.mean(cosine))
        out["min_cosine"] = float(np.min(cosine))
        if 2 < len(reference) <= RANKING_ROWS:
            agree = _nearest(reference) == _nearest(candidate)
            out["ranking_agreement"] = float(np.mean(agree))
    else:
        out["mean_abs_deviation"] = float(np.mean(gap)) if gap.size else 0.0
    return out


def metrics(
    outputs: tuple[OutputSpec, ...],
    reference: Outputs,
    candidate: Outputs,
    labels: np.ndarray | None,
) -> dict[str, dict[str, float]]:
    """{output name: its metrics} for every output."""
    return {
        o.name: output_metrics(o.task, reference[o.name], candidate[o.name], labels)
        for o in outputs
    }


@dataclass
class Verdict:
    """Per-output metrics of one model against its reference, and why it failed (if it did)."""

    variant: str
    reference: str  # "fp32" for variants, "pytorch" for the FP32 ONNX model
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no output gave a reason to reject."""
        return not self.reasons

    @property
    def batch_dependent(self) -> bool:
        """True when an output failed on batch dependence (keeping layers in FP32 does not fix
        dynamic activation scales in the others, so the INT8 search skips such a variant)."""
        return any("batch dependence" in reason for reason in self.reasons)


def _reasons(
    task: str, values: Mapping[str, float], gate: GateSettings, baseline: float = 0.0
) -> list[str]:
    found = []
    if not all(np.isfinite(v) for v in values.values()):
        found.append("non-finite outputs")
    limit = gate.max_accuracy_drop
    if "exact_agreement" in values and 1 - values["exact_agreement"] > limit + 1e-9:
        found.append(f"exact agreement {values['exact_agreement']:.2%} < {1 - limit:.2%}")
    elif task == "classification" and "top1_agreement" in values:
        drop = values.get("accuracy_drop", 1.0 - values["top1_agreement"])
        what = "accuracy drop" if "accuracy_drop" in values else "top-1 disagreement"
        if drop > limit + 1e-9:
            found.append(f"{what} {drop * 100:.2f} points > {limit * 100:.2f}")
    elif task == "embedding" and "mean_cosine" in values:
        if values["mean_cosine"] < gate.min_mean_cosine:
            found.append(f"mean cosine {values['mean_cosine']:.4f} < {gate.min_mean_cosine}")
        agreement = values.get("ranking_agreement")
        if agreement is not None and agreement < gate.min_ranking_agreement:
            found.append(f"ranking agreement {agreement:.3f} < {gate.min_ranking_agreement}")
    bound = gate.max_abs_deviation
    if bound is not None and values["max_abs_deviation"] > bound:
        found.append(f"max deviation {values['max_abs_deviation']:.4g} > {bound}")
    dependence = values.get("batch_dependence")
    if dependence is not None and dependence > gate.max_batch_dependence + baseline:
        found.append(
            f"batch dependence {dependence:.4g} > {gate.max_batch_dependence}"
            + (f" + FP32's {baseline:.2g}" if baseline else "")
            + ": its answer to a row changes with the rows batched with it"
        )
    return found


def judge(
    variant: str,
    outputs: tuple[OutputSpec, ...],
    values: dict[str, dict[str, float]],
    gate: GateSettings,
    reference: str = "fp32",
    baseline: Mapping[str, float] | None = None,
) -> Verdict:
    """Apply the gate to every output; each reason starts with the output's name.

    `baseline`: {output: the reference model's own batch dependence}, allowed on top of
    `gate.max_batch_dependence` (zero padding that is not neutral for a model moves FP32 too).
    """
    base = baseline or {}
    reasons = [
        f"{o.name}: {reason}"
        for o in outputs
        for reason in _reasons(o.task, values[o.name], gate, base.get(o.name, 0.0))
    ]
    return Verdict(variant, reference, values, reasons)


def headline(values: Mapping[str, float]) -> str:
    """One output's metric and absolute value in a few words, e.g. `acc 98.89% (-0.19)`."""
    if "accuracy" in values:
        change = (values["accuracy"] - values["reference_accuracy"]) * 100
        return f"acc {values['accuracy']:.2%} ({change:+.2f})"
    if "top1_agreement" in values:
        return f"top-1 agree {values['top1_agreement']:.2%}"
    if "mean_cosine" in values:
        rank = values.get("ranking_agreement")
        ranked = f" rank {rank:.3f}" if rank is not None else ""
        return f"cos {values['mean_cosine']:.4f}/{values['min_cosine']:.3f}{ranked}"
    if "exact_agreement" in values:
        return f"equal {values['exact_agreement']:.2%}"
    return f"mean dev {values.get('mean_abs_deviation', 0):.3g}"


def distance(candidate: Outputs, reference: Outputs) -> float:
    """How far `candidate` is from `reference`: the sum over outputs of the mean squared error
    relative to the reference's mean square (0 = equal). The INT8 search ranks nodes by it."""
    total = 0.0
    for name, ref in reference.items():
        want = ref.astype(np.float64)
        got = candidate[name].astype(np.float64)
        total += float(np.mean((got - want) ** 2) / (np.mean(want**2) + 1e-12))
    return total

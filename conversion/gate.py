"""The accuracy gate: each variant against the FP32 reference on the held-out validation set."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from conversion.spec import Dataset, Gate


def session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path: Path, dataset: Dataset, progress=None) -> list[np.ndarray]:
    """All outputs over the dataset's batches, concatenated along the batch axis."""
    sess = session(path)
    chunks: list[list[np.ndarray]] = []
    for batch in dataset.batches:
        chunks.append([np.asarray(o, dtype=np.float32) for o in sess.run(None, batch)])
        if progress:
            progress()
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


@dataclass
class Verdict:
    """Metrics of one variant and whether it passed; `reasons` says why not."""

    variant: str
    metrics: dict[str, float] = field(default_factory=dict)
    passed: bool = True
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _nearest(embeddings: np.ndarray) -> np.ndarray:
    e = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
    similarity = e @ e.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argmax(similarity, axis=1)


def metrics(
    task: str, reference: list[np.ndarray], candidate: list[np.ndarray], labels: np.ndarray | None
) -> dict[str, float]:
    ref, got = reference[0], candidate[0]
    out = {
        "max_abs_deviation": float(
            max(np.max(np.abs(r - c)) for r, c in zip(reference, candidate, strict=True))
        ),
    }
    if task == "classification":
        out["top1_agreement"] = float(np.mean(np.argmax(ref, 1) == np.argmax(got, 1)))
        if labels is not None:
            out["reference_accuracy"] = float(np.mean(np.argmax(ref, 1) == labels))
            out["accuracy"] = float(np.mean(np.argmax(got, 1) == labels))
            out["accuracy_drop"] = out["reference_accuracy"] - out["accuracy"]
    elif task == "embedding":
        cosine = _cosine(ref, got)
        out["mean_cosine"] = float(np.mean(cosine))
        out["min_cosine"] = float(np.min(cosine))
        if len(ref) > 2:
            out["ranking_agreement"] = float(np.mean(_nearest(ref) == _nearest(got)))
    return out


def judge(variant: str, task: str, values: dict[str, float], gate: Gate) -> Verdict:
    verdict = Verdict(variant, values)
    if variant == "fp32":
        return verdict  # the reference
    if not all(np.isfinite(v) for v in values.values()):
        verdict.reasons.append("non-finite outputs")
    if task == "classification":
        drop = values.get("accuracy_drop")
        if drop is None:  # no labels: agreement with FP32 stands in for accuracy
            drop = 1.0 - values["top1_agreement"]
        if drop > gate.max_accuracy_drop + 1e-9:
            verdict.reasons.append(
                f"accuracy drop {drop * 100:.2f} points > {gate.max_accuracy_drop * 100:.2f}"
            )
    elif task == "embedding":
        if values["mean_cosine"] < gate.min_mean_cosine:
            verdict.reasons.append(
                f"mean cosine {values['mean_cosine']:.4f} < {gate.min_mean_cosine}"
            )
        agreement = values.get("ranking_agreement")
        if agreement is not None and agreement < gate.min_ranking_agreement:
            verdict.reasons.append(
                f"ranking agreement {agreement:.3f} < {gate.min_ranking_agreement}"
            )
    if gate.max_abs_deviation is not None and values["max_abs_deviation"] > gate.max_abs_deviation:
        verdict.reasons.append(
            f"max deviation {values['max_abs_deviation']:.4g} > {gate.max_abs_deviation}"
        )
    verdict.passed = not verdict.reasons
    return verdict

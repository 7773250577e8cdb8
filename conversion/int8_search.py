"""Accuracy-aware INT8: the fewest layers to keep in FP32 for an INT8 variant to pass the gate.

The units searched are layers (`conversion.variants.layers`: a Conv/Gemm/MatMul/Attention node
with the quantized nodes after it), named by their compute node; the search itself only sees
names, so its logic is tested on fakes.

1. Sensitivity: each layer alone is quantized (all others FP32) and the model's
   distance to FP32 measured on a sample of the validation set: the nodes that do the most
   harm alone are the most sensitive. (Keeping one node at a time in FP32 instead misses a
   tensor whose producer and consumer both hurt: either one alone still quantizes it.)
2. Greedy: the most sensitive layers are kept in FP32 in growing prefixes (1, 2, 4, ...) until a
   model passes the full gate, then the smallest passing prefix is found by bisection.
Both phases run within a time budget (sensitivity takes at most `SENSITIVITY_SHARE` of it); the
result says what stayed FP32, how many models were tried and whether the budget ran out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conversion.gate import Verdict

SENSITIVITY_SHARE = 0.6

Build = Callable[[tuple[str, ...]], Path]  # nodes kept FP32 -> a new quantized model file
Distance = Callable[[Path], float]  # model -> distance of its outputs to FP32 (0 = equal)
Judge = Callable[[Path], Verdict]  # model -> the full gate's verdict


@dataclass
class SearchResult:
    """What the search found: the passing model (or None) and the nodes it keeps in FP32."""

    kind: str
    kept_fp32: tuple[str, ...] = ()
    path: Path | None = None
    verdict: Verdict | None = None
    sensitivity: dict[str, float] = field(default_factory=dict)  # node -> distance, it alone INT8
    trials: int = 0
    elapsed_s: float = 0.0
    exhausted: bool = False  # the budget ran out before the search finished

    def as_dict(self) -> dict:
        """The manifest entry: what stayed FP32, trials, time, and the ten most sensitive nodes."""
        ranked = sorted(self.sensitivity.items(), key=lambda kv: -kv[1])
        return {
            "kind": self.kind,
            "kept_fp32": list(self.kept_fp32),
            "passed": self.path is not None,
            "trials": self.trials,
            "elapsed_s": round(self.elapsed_s, 1),
            "budget_exhausted": self.exhausted,
            "most_sensitive": [{"node": n, "distance_alone_int8": d} for n, d in ranked[:10]],
        }


class _Clock:
    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def out(self, share: float = 1.0) -> bool:
        return self.elapsed() >= self.budget_s * share


def rank(
    nodes: list[str], build: Build, distance: Distance, clock: _Clock, progress: Callable
) -> dict[str, float]:
    """{node: distance to FP32 with that node alone in INT8}, until the sensitivity share ends."""
    scores = {}
    for node in nodes:
        if clock.out(SENSITIVITY_SHARE):
            break
        path = build(tuple(n for n in nodes if n != node))
        scores[node] = distance(path)
        path.unlink(missing_ok=True)
        progress(note=f"sensitivity {len(scores)}/{len(nodes)}")
    return scores


def search(
    kind: str,
    nodes: list[str],
    build: Build,
    distance: Distance,
    judge: Judge,
    budget_s: float,
    progress: Callable = lambda **_: None,
) -> SearchResult:
    """Find the smallest prefix of the sensitivity order that passes `judge` (see module doc)."""
    clock = _Clock(budget_s)
    result = SearchResult(kind)
    result.sensitivity = rank(nodes, build, distance, clock, progress)
    order = sorted(nodes, key=lambda n: -result.sensitivity.get(n, -math.inf))  # unranked last
    failed, passed = 0, None  # prefix lengths known to fail / to pass
    size = 1
    while nodes and not clock.out():
        if passed is None and failed >= len(order):
            break
        if passed is not None:
            if passed - failed <= 1:
                break
            size = (failed + passed) // 2
        path = build(tuple(order[:size]))
        verdict = judge(path)
        result.trials += 1
        progress(note=f"{size} node(s) FP32: {'pass' if verdict.passed else 'fail'}")
        if verdict.passed:
            if result.path is not None:
                result.path.unlink(missing_ok=True)
            passed, result.path, result.verdict = size, path, verdict
            result.kept_fp32 = tuple(order[:size])
        else:
            path.unlink(missing_ok=True)
            failed = size
            size = min(size * 2, len(order))
    result.trials += len(result.sensitivity)
    result.elapsed_s = clock.elapsed()
    finished = (passed is not None and passed - failed <= 1) or failed >= len(order)
    result.exhausted = not finished
    return result

"""`python -m conversion bench`: the throughput claims, measured on this machine at batch 32.

* MiniLM: served INT8 (`minilm_int8`) in ONNX Runtime vs eager PyTorch FP32, 32 sentences of
  128 tokens (and of their 32-token bucket), with the cosine to PyTorch on those batches.
* digits: served INT8 (`digits_int8`) vs the served FP32 ONNX model (`digits`) in ORT.
Both ORT sessions use ORT's default (ENABLE_ALL, online) and 2 intra-op threads, as served.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from conversion import digits, minilm
from conversion.bench import tile_batch, time_call
from conversion.demo import build_missing
from conversion.gate import session

console = Console()
if not console.is_terminal and console.width < 160:
    console.width = 160
BATCH = 32


def _interleaved(calls: dict[str, object], rounds: int, budget: float) -> dict[str, float]:
    """samples/s of each call: timed in alternating rounds, best round's median kept.

    Other work on a shared 2-core machine slows whichever call runs at that moment;
    alternating and keeping each call's best round makes the ratio fair.
    """
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            best[name] = min(best[name], time_call(call, 3, budget))
    return {name: BATCH / seconds for name, seconds in best.items()}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run_benchmark(repository: Path, quick: bool = False) -> dict:
    budget = 0.5 if quick else 1.5
    torch.set_num_threads(2)
    build_missing(repository)
    rows = []
    results: dict = {"threads": 2, "cpus": os.cpu_count(), "batch": BATCH}

    rounds = 2 if quick else 4
    tokenizer = minilm.load_tokenizer()
    sentences = minilm.validation_sentences(BATCH)
    model = minilm.load_model("sdpa")  # PyTorch's default attention: the deployed baseline
    fp32_sess = session(repository / "minilm/1/model.onnx", threads=2)
    int8_sess = session(repository / "minilm_int8/1/model.onnx", threads=2)
    for length in (128, 32):
        feed = minilm.tokenize(tokenizer, sentences, length=length)
        tensors = tuple(torch.from_numpy(v) for v in feed.values())

        def eager(tensors=tensors):
            with torch.inference_mode():
                return model(*tensors)

        rate = _interleaved(
            {
                "eager": eager,
                "fp32": lambda feed=feed: fp32_sess.run(None, feed),
                "int8": lambda feed=feed: int8_sess.run(None, feed),
            },
            rounds,
            budget,
        )
        cosine = _cosine(eager().numpy(), int8_sess.run(None, feed)[0])
        rows.append(
            (
                f"MiniLM, {length} tokens",
                "eager PyTorch FP32",
                rate["eager"],
                "ORT FP32 optimized",
                rate["fp32"],
                "ORT INT8 (served)",
                rate["int8"],
                f"{rate['int8'] / rate['eager']:.2f}x vs eager",
                f"cos mean {cosine.mean():.4f} min {cosine.min():.4f}",
            )
        )
        results[f"minilm_{length}"] = {
            "eager_fp32_per_s": rate["eager"],
            "ort_fp32_per_s": rate["fp32"],
            "int8_per_s": rate["int8"],
            "speedup_vs_eager": rate["int8"] / rate["eager"],
            "cosine_mean": float(cosine.mean()),
            "cosine_min": float(cosine.min()),
        }

    data = digits.load_data()
    feed = tile_batch({digits.INPUT_NAME: data.test_x[:BATCH]}, BATCH)
    fp32_sess = session(repository / "digits/1/model.onnx", threads=2)
    int8_sess = session(repository / "digits_int8/1/model.onnx", threads=2)
    rate = _interleaved(
        {"fp32": lambda: fp32_sess.run(None, feed), "int8": lambda: int8_sess.run(None, feed)},
        rounds,
        budget / 2,
    )
    fp32, int8 = rate["fp32"], rate["int8"]
    manifest = json.loads((repository / "digits/manifest.json").read_text())
    served = manifest["int8_selected"]
    drop = manifest["variants"][served]["metrics"]["accuracy_drop"]
    rows.append(
        (
            "digits",
            "ORT FP32 (served)",
            fp32,
            "",
            None,
            f"ORT INT8 ({served})",
            int8,
            f"{int8 / fp32:.2f}x vs ORT FP32",
            f"accuracy drop {drop * 100:.2f} points (validation)",
        )
    )
    results["digits"] = {
        "ort_fp32_per_s": fp32,
        "int8_per_s": int8,
        "int8_kind": served,
        "speedup_vs_ort_fp32": int8 / fp32,
        "accuracy_drop_points": drop * 100,
    }

    table = Table(title=f"samples/s at batch {BATCH}, 2 threads, {os.cpu_count()} CPUs")
    for column in ("model", "baseline", "/s", "other", "/s", "INT8", "/s", "speedup", "quality"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(f"{c:,.0f}" if isinstance(c, float) else ("" if c is None else c) for c in row)
        )
    console.print(table)
    console.print_json(json.dumps(results))
    return results

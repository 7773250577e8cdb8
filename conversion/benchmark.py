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
BATCH = 32


def _ort_rate(path: Path, feed: dict[str, np.ndarray], budget: float) -> tuple[float, np.ndarray]:
    sess = session(path, threads=2)
    seconds = time_call(lambda: sess.run(None, feed), 5, budget)
    return BATCH / seconds, sess.run(None, feed)[0]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run_benchmark(repository: Path, quick: bool = False) -> dict:
    budget = 1.5 if quick else 4.0
    torch.set_num_threads(2)
    build_missing(repository)
    rows = []
    results: dict = {"threads": 2, "cpus": os.cpu_count(), "batch": BATCH}

    tokenizer = minilm.load_tokenizer()
    sentences = minilm.validation_sentences(BATCH)
    model = minilm.load_model()
    for length in (128, 32):
        feed = minilm.tokenize(tokenizer, sentences, length=length)
        tensors = tuple(torch.from_numpy(v) for v in feed.values())
        with torch.inference_mode():
            eager_s = time_call(lambda: model(*tensors), 3, budget)
            reference = model(*tensors).numpy()
        eager = BATCH / eager_s
        fp32, _ = _ort_rate(repository / "minilm/1/model.onnx", feed, budget)
        int8, out = _ort_rate(repository / "minilm_int8/1/model.onnx", feed, budget)
        cosine = _cosine(reference, out)
        rows.append((f"MiniLM @{length} tok", "eager PyTorch FP32", eager, "ORT FP32 optimized", fp32,
                     "ORT INT8 (served)", int8, f"{int8 / eager:.2f}x vs eager",
                     f"cos mean {cosine.mean():.4f} min {cosine.min():.4f}"))
        results[f"minilm_{length}"] = {"eager_fp32_per_s": eager, "ort_fp32_per_s": fp32, "int8_per_s": int8,
                                       "speedup_vs_eager": int8 / eager, "cosine_mean": float(cosine.mean()),
                                       "cosine_min": float(cosine.min())}

    data = digits.load_data()
    feed = tile_batch({digits.INPUT_NAME: data.test_x[:BATCH]}, BATCH)
    fp32, _ = _ort_rate(repository / "digits/1/model.onnx", feed, budget)
    int8, _ = _ort_rate(repository / "digits_int8/1/model.onnx", feed, budget)
    manifest = json.loads((repository / "digits/manifest.json").read_text())
    served = manifest["int8_selected"]
    drop = manifest["variants"][served]["metrics"]["accuracy_drop"]
    rows.append(("digits", "ORT FP32 (served)", fp32, "", None, f"ORT INT8 ({served})", int8,
                 f"{int8 / fp32:.2f}x vs ORT FP32", f"accuracy drop {drop * 100:.2f} points (validation)"))
    results["digits"] = {"ort_fp32_per_s": fp32, "int8_per_s": int8, "int8_kind": served,
                         "speedup_vs_ort_fp32": int8 / fp32, "accuracy_drop_points": drop * 100}

    table = Table(title=f"samples/s at batch {BATCH}, 2 threads, {os.cpu_count()} CPUs")
    for column in ("model", "baseline", "/s", "other", "/s", "INT8", "/s", "speedup", "quality"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{c:,.0f}" if isinstance(c, float) else ("" if c is None else c) for c in row))
    console.print(table)
    console.print_json(json.dumps(results))
    return results

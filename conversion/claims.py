"""`python -m conversion bench`: the throughput claims, measured on this machine at batch 32.

* MiniLM: served INT8 (`minilm_ov_int8` in OpenVINO, else `minilm_int8` in ONNX Runtime) vs
  eager PyTorch FP32, 32 sentences of
  128 tokens (and of their 32-token bucket), with the cosine to PyTorch on those batches.
* digits: served INT8 (`digits_int8`) vs the served FP32 ONNX model (`digits`) in ORT.
Both ORT sessions use ORT's default (ENABLE_ALL, online) and 2 intra-op threads, as served.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from conversion import digits, minilm
from conversion.demo import build_missing
from conversion.gate import session
from conversion.latency import tile_batch, time_call

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


def _sessions(path: Path, threads: int, count: int) -> list:
    return [session(path, threads=threads) for _ in range(count)]


def _parallel_rates(
    setups: dict[str, list], feed: dict[str, np.ndarray], rounds: int, budget: float
) -> dict[str, float]:
    """samples/s with every session of a setup running batches concurrently (ORT frees the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    def loop(sess, seconds: float) -> int:
        sess.run(None, feed)
        done, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            sess.run(None, feed)
            done += 1
        return done

    best = dict.fromkeys(setups, 0.0)
    for _ in range(rounds):
        for name, sessions in setups.items():
            with ThreadPoolExecutor(len(sessions)) as pool:
                start = time.perf_counter()
                batches = sum(pool.map(lambda s: loop(s, budget), sessions))
                elapsed = time.perf_counter() - start
            best[name] = max(best[name], batches * BATCH / elapsed)
    return best


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def served_int8(repository: Path) -> Path:
    """The served MiniLM INT8 file: OpenVINO's (`minilm_ov_int8`, NNCF) where the conversion
    served it, else ONNX Runtime's (`minilm_int8`). FileNotFoundError when neither is served."""
    for path in (
        repository / "minilm_ov_int8/1/model.xml",
        repository / "minilm_int8/1/model.onnx",
    ):
        if path.exists():
            return path
    raise FileNotFoundError(f"no INT8 MiniLM is served in {repository} (see its manifest.json)")


def minilm_claim(repository: Path, rounds: int, budget: float) -> tuple[list[tuple], dict]:
    """MiniLM at 128 and 32 tokens: samples/s of eager PyTorch FP32, served FP32 and INT8 ONNX,
    and the INT8 cosine to PyTorch; (table rows, results by length)."""
    tokenizer = minilm.load_tokenizer()
    sentences = minilm.validation_sentences(BATCH)
    model = minilm.load_model("sdpa")  # PyTorch's default attention: the deployed baseline
    fp32_sess = session(repository / "minilm/1/model.onnx", threads=2)
    int8_sess = session(served_int8(repository), threads=2)
    rows, results = [], {}
    for length in (128, 32):
        feed = minilm.tokenize(tokenizer, sentences, length=length)
        tensors = tuple(torch.from_numpy(v) for v in feed.values())

        def eager(tensors=tensors):
            with torch.inference_mode():
                return model(*tensors)

        calls = {
            "eager": eager,
            "fp32": lambda feed=feed: fp32_sess.run(None, feed),
            "int8": lambda feed=feed: int8_sess.run(None, feed),
        }
        rate = _interleaved(calls, rounds, budget)
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
    return rows, results


def digits_claim(repository: Path, rounds: int, budget: float) -> tuple[list[tuple], dict]:
    """digits: samples/s of the served INT8 against the served FP32 ONNX model, three ways to use
    the 2 cores, with the INT8 accuracy drop from the manifest; (table rows, results)."""
    data = digits.load_data()
    feed = tile_batch({digits.INPUT_NAME: data.test_x[:BATCH]}, BATCH)
    fp32_path = repository / "digits/1/model.onnx"
    int8_path = repository / "digits_int8/1/model.onnx"
    manifest = json.loads((repository / "digits/manifest.json").read_text())
    served = manifest["int8_selected"]
    drop = manifest["variants"][served]["metrics"][digits.OUTPUT_NAME]["accuracy_drop"]
    results = {"int8_kind": served, "accuracy_drop_points": drop * 100}
    # a model this small does not scale to 2 intra-op threads: three ways to use the 2 cores
    setups = {
        "1 thread": lambda path: _sessions(path, 1, 1),
        "2 threads, 1 session": lambda path: _sessions(path, 2, 1),
        "2 sessions x 1 thread": lambda path: _sessions(path, 1, 2),
    }
    rows = []
    for setup, make in setups.items():
        sessions = {"fp32": make(fp32_path), "int8": make(int8_path)}
        rate = _parallel_rates(sessions, feed, rounds, budget / 2)
        fp32, int8 = rate["fp32"], rate["int8"]
        rows.append(
            (
                f"digits, {setup}",
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
        results[setup] = {
            "ort_fp32_per_s": fp32,
            "int8_per_s": int8,
            "speedup_vs_ort_fp32": int8 / fp32,
        }
    return rows, results


def run_benchmark(repository: Path, quick: bool = False) -> dict:
    """Build missing demo models, measure both claims (samples/s at batch 32, 2 threads), print
    the table and the JSON, and return the results."""
    budget, rounds = (0.5, 2) if quick else (1.5, 4)
    torch.set_num_threads(2)
    build_missing(repository)
    minilm_rows, results = minilm_claim(repository, rounds, budget)
    digits_rows, results["digits"] = digits_claim(repository, rounds, budget)
    results.update({"threads": 2, "cpus": os.cpu_count(), "batch": BATCH})
    table = Table(title=f"samples/s at batch {BATCH}, 2 threads, {os.cpu_count()} CPUs")
    for column in ("model", "baseline", "/s", "other", "/s", "INT8", "/s", "speedup", "quality"):
        table.add_column(column)
    for row in minilm_rows + digits_rows:
        table.add_row(
            *(f"{c:,.0f}" if isinstance(c, float) else ("" if c is None else c) for c in row)
        )
    console.print(table)
    console.print_json(json.dumps(results))
    return results

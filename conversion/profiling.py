"""`make profile MODEL=...`: PyTorch profiler and ORT profiling, top operators and time split."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from rich.console import Console
from rich.table import Table

from conversion import digits, minilm
from conversion.latency import tile_batch
from conversion.spec import SpecError

console = Console()
if not console.is_terminal and console.width < 160:
    console.width = 160  # the PyTorch profiler table is wide
_NUMPY = {1: np.float32, 7: np.int64, 6: np.int32, 10: np.float16, 9: np.bool_}


def _demo_inputs(model: str, batch: int) -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    if model == "digits":
        data = digits.load_data()
        return digits.DigitsCNN().eval(), tile_batch(
            {digits.INPUT_NAME: data.test_x[:batch]}, batch
        )
    if model == "minilm":
        feed = minilm.tokenize(
            minilm.load_tokenizer(), minilm.validation_sentences(batch), length=128
        )
        return minilm.load_model(), feed
    raise SpecError(f"profile: unknown model '{model}' (digits, minilm, or a .onnx file)")


def _random_inputs(path: Path, batch: int) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}
    rng = np.random.default_rng(0)
    feed = {}
    for value in graph.input:
        if value.name in init:
            continue
        dims = [
            d.dim_value if d.HasField("dim_value") else 16 for d in value.type.tensor_type.shape.dim
        ]
        dims[0] = batch
        dtype = _NUMPY.get(value.type.tensor_type.elem_type, np.float32)
        feed[value.name] = (
            rng.integers(0, 100, dims) if np.issubdtype(dtype, np.integer) else rng.random(dims)
        ).astype(dtype)
    return feed


_CATEGORIES = {
    "matmul/linear": ("addmm", "mm", "bmm", "matmul", "linear", "baddbmm"),
    "convolution": ("conv", "convolution", "mkldnn_convolution"),
    "attention": ("scaled_dot_product", "softmax", "_flash", "attention"),
    "normalization": ("layer_norm", "batch_norm", "norm"),
    "copies/layout": (
        "copy_",
        "contiguous",
        "clone",
        "to",
        "_to_copy",
        "transpose",
        "permute",
        "view",
        "reshape",
        "expand",
    ),
}


def _category(op: str) -> str:
    name = op.removeprefix("aten::")
    for category, keys in _CATEGORIES.items():
        if any(name == k or name.startswith(k) or (len(k) > 4 and k in name) for k in keys):
            return category
    return "elementwise/other"


def torch_profile(
    module: torch.nn.Module, feed: dict[str, np.ndarray], top: int, runs: int = 5
) -> None:
    """Print the PyTorch profiler's top `top` operators by self CPU time over `runs` calls, and the split by category."""
    tensors = tuple(torch.from_numpy(v) for v in feed.values())
    with torch.inference_mode():
        module(*tensors)
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=False
        ) as prof:
            for _ in range(runs):
                module(*tensors)
    console.rule("PyTorch profiler (eager FP32), self CPU time")
    averages = prof.key_averages()
    console.print(averages.table(sort_by="self_cpu_time_total", row_limit=top))
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    groups: dict[str, float] = defaultdict(float)
    for event in averages:
        groups[_category(event.key)] += event.self_cpu_time_total
    split = ", ".join(
        f"{name} {us / total:.0%}" for name, us in sorted(groups.items(), key=lambda kv: -kv[1])
    )
    console.print(f"where the time goes (PyTorch, {runs} runs): {split}")


def ort_profile(
    path: Path, feed: dict[str, np.ndarray], top: int, runs: int = 10
) -> dict[str, float]:
    """Run with ORT profiling; print the top operators by total time; return {op: ms}."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        options.intra_op_num_threads = 2
        options.log_severity_level = 3
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    phases: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] += event["dur"] / 1000
            calls[op] += 1
        elif event.get("cat") == "Session":
            phases[event["name"]] += event["dur"] / 1000
    total = sum(by_op.values()) or 1.0
    table = Table(
        title=f"ONNX Runtime profile: {path.parent.parent.name}/{path.parent.name}/{path.name}, "
        f"batch {len(next(iter(feed.values())))}, {runs} runs"
    )
    for column in ("operator", "calls", "total ms", "share"):
        table.add_column(column)
    for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:top]:
        table.add_row(op, str(calls[op]), f"{ms:.2f}", f"{ms / total:.1%}")
    console.print(table)
    run_ms = phases.get("model_run", 0.0)
    console.print(
        f"where the time goes: model_run {run_ms:.1f} ms total, kernels {total:.1f} ms "
        f"({total / run_ms:.0%} of run time; the rest is framework overhead and copies)"
        if run_ms
        else f"kernels {total:.1f} ms"
    )
    return dict(by_op)


def run_profile(model: str, repository: Path, batch: int, top: int) -> None:
    """Profile a demo model (PyTorch, then its served FP32 and INT8 ONNX) or an .onnx file on random inputs; SpecError for an unknown name or a missing file."""
    if model.endswith(".onnx"):
        path = Path(model)
        if not path.exists():
            raise SpecError(f"profile: {path} does not exist")
        ort_profile(path, _random_inputs(path, batch), top)
        return
    module, feed = _demo_inputs(model, batch)
    torch_profile(module, feed, top)
    for variant in (model, f"{model}_int8"):
        path = repository / variant / "1" / "model.onnx"
        if path.exists():
            ort_profile(path, feed, top)
        else:
            console.print(f"[yellow]{path} missing: run `make convert` first")

"""Graph optimization: ORT offline optimization (EXTENDED) and the transformers optimizer.

ENABLE_ALL is not saved offline: it writes layouts for this machine's CPU (NCHWc and friends),
so the saved model would be hardware-specific. The server applies ENABLE_ALL online anyway.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxruntime as ort

from conversion.external_data import external_data_files
from conversion.settings import TransformerHint

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}


@dataclass
class OptimizationReport:
    """Operator counts before and after, and the fusions that happened."""

    before: Counter = field(default_factory=Counter)
    after: Counter = field(default_factory=Counter)
    transformer_fusions: dict[str, int] = field(default_factory=dict)

    @property
    def fusions(self) -> dict[str, int]:
        """Operators that exist only after optimization (fused ops), plus the optimizer's counts."""
        fused = {op: n for op, n in self.after.items() if op not in self.before}
        fused.update({op: n for op, n in self.transformer_fusions.items() if n})
        return dict(sorted(fused.items()))

    @property
    def removed(self) -> dict[str, int]:
        """{operator: how many fewer there are after optimization}."""
        return {
            op: n - self.after.get(op, 0)
            for op, n in sorted(self.before.items())
            if n > self.after.get(op, 0)
        }

    def as_dict(self) -> dict:
        """The manifest entry: node counts before and after, fusions, removed operators."""
        return {
            "nodes_before": sum(self.before.values()),
            "nodes_after": sum(self.after.values()),
            "fusions": self.fusions,
            "removed": self.removed,
        }


def op_counts(path: Path) -> Counter:
    """{op_type: count} of the nodes of the ONNX model at `path` (weights not loaded)."""
    return Counter(
        node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node
    )


def ort_offline(source: Path, target: Path, level: str = "extended") -> Path:
    """Let ORT optimize `source` at `level` and save the result to `target` (CPU provider).

    A source with external data (a model of 2 GiB or more) is saved with its weights in
    `<target name>.data` beside `target` (ORT's optimized_model_external_initializers options).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    if external_data_files(source):  # a large model: its weights stay outside the graph
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", f"{target.name}.data"
        )
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
        )
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target


def transformers_optimize(source: Path, target: Path, hint: TransformerHint) -> dict[str, int]:
    """ORT's transformers optimizer (Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm fusion).

    It fuses attention only on the TorchScript (legacy) export of a model run with eager attention;
    the returned counts say what it actually fused.
    """
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(source),
        model_type=hint.model_type,
        num_heads=hint.num_heads,
        hidden_size=hint.hidden_size,
        opt_level=0,  # graph fusions only; ORT's own levels run afterwards
        only_onnxruntime=False,
    )
    model.save_model_to_file(
        str(target), use_external_data_format=bool(external_data_files(source))
    )
    return {op: int(n) for op, n in model.get_fused_operator_statistics().items() if n}


@dataclass(frozen=True)
class Optimized:
    """`base`: portable (transformer-fused or BASIC-optimized), what FP16 and dynamic INT8 start
    from; `unfused`: the export at ORT's BASIC level (no transformer fusions), what static INT8
    starts from (`base` itself without a transformer hint); `fp32`: `base` optimized at
    EXTENDED, the served FP32 model; `report`: what changed.

    Static INT8 from the unfused graph: ORT fuses each QDQ MatMul into an integer kernel, which the
    transformer-fused ops (Attention, SkipLayerNormalization, BiasGelu) leave unfused. MiniLM on
    an AMD Zen 3 (AVX2), the conversion's latency table: from the fused graph 1.3-2.0x FP32's
    latency, from the unfused one 0.67-0.73x (docs/results/openvino/README.md, run 12).
    """

    base: Path
    unfused: Path
    fp32: Path
    report: OptimizationReport

    def source(self, kind: str) -> Path:
        """The graph the variant `kind` is built from: `unfused` for int8_static, else `base`."""
        return self.unfused if kind == "int8_static" else self.base


def optimize(exported: Path, workdir: Path, hint: TransformerHint | None) -> Optimized:
    """Optimize `exported` into `workdir/base.onnx`, `workdir/fp32.onnx` and, with a transformer
    hint, `workdir/unfused.onnx` (see Optimized).

    The base feeds FP16 and dynamic INT8: the quantizers know Attention but not CPU-only fusions
    such as FusedConv.
    """
    report = OptimizationReport(before=op_counts(exported))
    base = unfused = workdir / "base.onnx"
    if hint is not None:
        report.transformer_fusions = transformers_optimize(exported, base, hint)
        unfused = ort_offline(exported, workdir / "unfused.onnx", "basic")
    else:
        ort_offline(exported, base, "basic")
    optimized = ort_offline(base, workdir / "fp32.onnx", "extended")
    report.after = op_counts(optimized)
    return Optimized(base, unfused, optimized, report)

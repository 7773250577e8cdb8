"""OpenVINO variants of the unfused ONNX export: `ov_int8` (NNCF post-training quantization) and
`ov_bf16` (the FP32 IR run with BF16 inference precision where the CPU has BF16), saved as
OpenVINO IR (`model.xml` + `model.bin`) for Triton's OpenVINO backend.

OpenVINO reads the export as written (`exported.onnx`, later `<model>/portable.onnx`), not the
graph fused by ONNX Runtime's transformers optimizer (its com.microsoft ops are ORT's own).
The Triton parameters a variant needs to run as judged (HINT_BF16) are stored in the IR's
rt_info under `triton_openvino_parameters`, so the gate, the latency table, the published
config.pbtxt and the local twin all read them from the one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from conversion.openvino_parameters import WEIGHTS_FILE, runtime_properties

OV_KINDS = ("ov_int8", "ov_bf16")
RT_INFO_KEY = "triton_openvino_parameters"


def core():
    """One OpenVINO Runtime Core (imported lazily: only conversions with OV variants pay for it)."""
    import openvino as ov

    return ov.Core()


def cpu_has_bf16() -> bool:
    """True when the CPU plugin lists BF16 among its optimization capabilities (AVX512_BF16/AMX)."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


ATTENTION_OPS = {"Softmax", "ScaledDotProductAttention"}


def is_transformer(model) -> bool:
    """True for a graph with attention: NNCF's ModelType.TRANSFORMER then applies (SmoothQuant,
    attention kept in floating point). OpenVINO's ONNX frontend turns BERT attention into one
    ScaledDotProductAttention op, so a Softmax alone does not find it. MiniLM without it: mean
    cosine to FP32 0.64 (the gate refuses it); with it 0.997."""
    return any(op.get_type_name() in ATTENTION_OPS for op in model.get_ops())


def calibration_rows(batches: Sequence[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Every calibration row as a batch of one (NNCF counts samples by items of its dataset)."""
    return [
        {name: array[i : i + 1] for name, array in batch.items()}
        for batch in batches
        for i in range(len(next(iter(batch.values()))))
    ]


def build(
    kind: str, source: Path, target: Path, calibration: Sequence[dict[str, np.ndarray]]
) -> Path:
    """Write `target` (.xml, with its .bin) for `kind` from the ONNX file `source`.

    ov_int8: nncf.quantize with every calibration row (ModelType.TRANSFORMER for graphs with
    attention). ov_bf16: the FP32 IR with HINT_BF16=YES where the CPU has BF16; where it has not,
    the same IR runs in FP32 (`inference_precision` tells which). Weights stay FP32 in the file.
    Raises ValueError for another kind.
    """
    import nncf
    import openvino as ov

    model = ov.convert_model(str(source))
    if kind == "ov_int8":
        rows = calibration_rows(calibration)
        model_type = nncf.ModelType.TRANSFORMER if is_transformer(model) else None
        model = nncf.quantize(
            model, nncf.Dataset(rows), model_type=model_type, subset_size=len(rows)
        )
    elif kind == "ov_bf16":
        if cpu_has_bf16():
            model.set_rt_info("YES", [RT_INFO_KEY, "HINT_BF16"])
    else:
        raise ValueError(f"unknown OpenVINO variant '{kind}' (choose from {', '.join(OV_KINDS)})")
    ov.save_model(model, str(target), compress_to_fp16=False)
    return target


def parameters(path: Path) -> dict[str, str]:
    """The Triton OpenVINO backend parameters stored in the IR at `path` (e.g. HINT_BF16)."""
    model = core().read_model(str(path))
    if not model.has_rt_info(RT_INFO_KEY):
        return {}
    stored = model.get_rt_info()[RT_INFO_KEY]  # {key: OVAny}
    return {key: value.astype(str) for key, value in stored.items()}


def bf16_may_be_at_fault(kind: str, precision: str | None) -> bool:
    """True for `ov_int8` whose floating-point layers ran in `precision` "bf16": OpenVINO's
    default on a CPU with BF16, and Triton's OpenVINO backend has no parameter for FP32, so it
    serves the variant the same way. Measured on MiniLM: on an Intel Xeon with AMX the mean
    cosine to FP32 is 0.977 in BF16 and 0.997 in FP32; on an AMD Zen 4 with AVX512_BF16 (no AMX)
    0.997 in BF16. False for another kind or precision (`ov_bf16` asks for BF16 by design)."""
    return kind == "ov_int8" and precision == "bf16"


def precision_note(in_f32: str) -> str:
    """The reason added to a quality refusal that BF16 caused: the same IR passed the gate run
    in FP32, with `in_f32` its metrics there (e.g. `embedding: cos 0.9972/0.989 rank 0.966`)."""
    return (
        "its floating-point layers ran in BF16 on this CPU, as Triton's OpenVINO backend runs "
        f"them here (the backend has no FP32 parameter); in FP32 it passes ({in_f32})"
    )


def weights(path: Path) -> Path:
    """The .bin file of the IR at `path`."""
    return path.with_suffix(Path(WEIGHTS_FILE).suffix)


class CompiledModel:
    """An IR compiled for the CPU with its stored parameters, called like an ORT session.

    `threads`: INFERENCE_NUM_THREADS (0 = OpenVINO's default, every core); PERFORMANCE_HINT
    LATENCY, so one call uses every thread it is given (THROUGHPUT splits them into streams).
    `precision`: INFERENCE_PRECISION_HINT (e.g. "f32"), which no Triton parameter can set: the
    gate uses it only to tell what BF16 costs a variant, never to judge one.
    """

    def __init__(self, path: Path, threads: int = 0, precision: str | None = None) -> None:
        settings = {"PERFORMANCE_HINT": "LATENCY", **parameters(path)}
        if threads:
            settings["INFERENCE_NUM_THREADS"] = str(threads)
        properties = runtime_properties(settings)
        if precision:
            properties["INFERENCE_PRECISION_HINT"] = precision
        self._compiled = core().compile_model(str(path), "CPU", properties)
        self._outputs = [o.get_any_name() for o in self._compiled.outputs]

    @property
    def inference_precision(self) -> str:
        """The precision its floating-point layers run in here, e.g. `bf16` or `f32`."""
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def run(self, names: Sequence[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs `names` (None: all, in graph order) for the inputs `feed`, as arrays."""
        answer = self._compiled(feed)
        by_name = {o.get_any_name(): answer[o] for o in self._compiled.outputs}
        return [np.asarray(by_name[n]) for n in (names or self._outputs)]

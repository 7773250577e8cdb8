"""Triton OpenVINO backend parameters -> OpenVINO Runtime properties: one mapping, read by the
accuracy gate and by the local stack's twin (copied beside it), so both run a model with the
knobs its config.pbtxt gives the official backend.

Source: github.com/triton-inference-server/openvino_backend, README "Parameters" and
`ModelState::ParseParameterHelper` in src/openvino.cc (commit db19304, August 2026): the backend
reads PERFORMANCE_HINT (LATENCY / THROUGHPUT / CUMULATIVE_THROUGHPUT), INFERENCE_NUM_THREADS,
COMPILATION_NUM_THREADS, NUM_STREAMS (AUTO / NUMA / a number) and HINT_BF16 (only `YES`, which
sets `ov::hint::inference_precision(bf16)`); it ignores other parameters. There is no parameter
for FP32 precision: on a CPU with AVX512_BF16 OpenVINO computes in BF16 unless told otherwise,
so a model served by that backend there runs its floating-point layers in BF16 either way.
The model file is `<version>/model.xml` with `model.bin` beside it (`default_model_filename`).
"""

from __future__ import annotations

MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
BACKEND_PARAMETERS = (
    "PERFORMANCE_HINT",
    "INFERENCE_NUM_THREADS",
    "COMPILATION_NUM_THREADS",
    "NUM_STREAMS",
    "HINT_BF16",
)


def runtime_properties(parameters: dict[str, str]) -> dict[str, str]:
    """The OpenVINO CPU properties the backend sets for these config parameters.

    `parameters`: {config parameter: string value}; keys the backend does not read are ignored.
    Raises ValueError for a value the backend refuses (HINT_BF16 other than YES, a hint or a
    stream count it does not know), as the backend fails to load such a model.
    """
    properties: dict[str, str] = {}
    for key in BACKEND_PARAMETERS:
        if key not in parameters:
            continue
        value = parameters[key].strip().upper()
        if key == "HINT_BF16":
            if value != "YES":
                raise ValueError(f"parameter HINT_BF16 must be YES, got {value!r}")
            properties["INFERENCE_PRECISION_HINT"] = "bf16"
        elif key == "PERFORMANCE_HINT":
            if value not in ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"):
                raise ValueError(f"parameter PERFORMANCE_HINT: unknown hint {value!r}")
            properties[key] = value
        elif (key == "NUM_STREAMS" and value in ("AUTO", "NUMA")) or value.isdigit():
            properties[key] = value
        else:
            raise ValueError(f"parameter {key} must be a non-negative number, got {value!r}")
    return properties

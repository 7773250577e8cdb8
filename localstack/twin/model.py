"""Python-backend twin of an `onnxruntime_onnx` model: the same model.onnx, run by ONNX Runtime.

The bundled tritonserver has no native ONNX Runtime backend, so the local stack serves each ONNX
model through this file (copied as `<version>/model.py`, with `conversion/fingerprint.py` beside
it). Triton's dynamic batcher hands `execute` every request of one batch; they are concatenated
along the batch axis and run as one ORT call, as the native backend would. Unlike the native
backend, a batch that fails is run again request by request, so only the guilty request fails:
each failed response carries its own `TritonError` (the python backend must never share one
between responses), with code INVALID_ARG where ONNX Runtime blames the input (index out of range,
rank, dimensions, type: ORT's INVALID_ARGUMENT status; clients see HTTP 400 / INVALID_ARGUMENT),
INTERNAL otherwise.

`initialize` refuses a model.onnx whose sha256 is not the config's `fingerprint`, as Triton's
checksum repository agent refuses it in the official image, so Triton keeps serving the file it
had loaded and the gateway's cache keys keep describing the file that answers.

It reads the knobs the native onnxruntime_backend reads, with the same meaning, so one config
tunes both: `optimization.graph.level` (-1 basic, 1 extended, 2 disabled, absent: all) and the
parameters `intra_op_thread_count`, `inter_op_thread_count` and `execution_mode` (1 = parallel).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

# Triton imports this file as `<version>.model`: `fingerprint.py` beside it is `<version>.fingerprint`
from .fingerprint import verify_fingerprint

MODEL_FILE = "model.onnx"
GRAPH_LEVELS = {
    -1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    1: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    2: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


def session_options(config):
    """ORT session options from the knobs of the native backend's config (see module docstring)."""
    parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    level = int(config.get("optimization", {}).get("graph", {}).get("level", 0))
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_LEVELS.get(
        level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.intra_op_num_threads = int(parameters.get("intra_op_thread_count", "0"))
    options.inter_op_num_threads = int(parameters.get("inter_op_thread_count", "0"))
    if parameters.get("execution_mode") == "1":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    return options


def error_response(error):
    """A response carrying its own TritonError: INVALID_ARG where ORT blames the input."""
    code = (
        pb_utils.TritonError.INVALID_ARG
        if isinstance(error, InvalidArgument)
        else pb_utils.TritonError.INTERNAL
    )
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime: {error}", code))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        fingerprint = config.get("parameters", {}).get("fingerprint", {}).get("string_value", "")
        verify_fingerprint(args["model_name"], version_dir, fingerprint, [MODEL_FILE])
        self.session = ort.InferenceSession(
            os.path.join(version_dir, MODEL_FILE),
            session_options(config),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.output_names = [tensor["name"] for tensor in config["output"]]

    def execute(self, requests):
        feeds = [
            {
                name: pb_utils.get_input_tensor_by_name(r, name).as_numpy()
                for name in self.input_names
            }
            for r in requests
        ]
        together = self._run_together(feeds) if len(feeds) > 1 else None
        if together is None:  # a single request, or a batch that failed: each request on its own
            return [self._run_alone(feed) for feed in feeds]
        return [self._response(outputs) for outputs in together]

    def _run_together(self, feeds):
        """Each request's outputs from one ORT call over the concatenated batch; None if it fails."""
        try:
            batch = {name: np.concatenate([f[name] for f in feeds]) for name in self.input_names}
            outputs = self.session.run(self.output_names, batch)
        except Exception:
            return None
        ends = np.cumsum([f[self.input_names[0]].shape[0] for f in feeds])[:-1]
        per_output = [np.split(output, ends) for output in outputs]
        return list(zip(*per_output, strict=True))

    def _run_alone(self, feed):
        try:
            return self._response(self.session.run(self.output_names, feed))
        except Exception as error:
            return error_response(error)

    def _response(self, outputs):
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(output))
            for name, output in zip(self.output_names, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)

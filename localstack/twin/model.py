"""Python-backend twin of an `onnxruntime_onnx` or `backend: "openvino"` model: the same model
files, run by ONNX Runtime (`model.onnx`) or OpenVINO Runtime (`model.xml` + `model.bin`).

The bundled tritonserver has neither native backend, so the local stack serves each such model
through this file (copied as `<version>/model.py`, with `conversion/fingerprint.py`,
`conversion/openvino_parameters.py` and `input_rules.py` beside it). A request that breaks an
input rule of the config (`shared_axis:*`, `max_length:*`, `valid_range:*`, `allow_empty:*`, as
the gateways check them) is refused alone with INVALID_ARG before any runtime sees it: OpenVINO
would answer it wrongly, without an error. Triton's dynamic batcher hands `execute` every
request of one batch; the requests of one shape are concatenated along the batch axis and run as
one call, as the native backends would. The twin's config allows ragged batches
(`localstack.tritonserver`), so one batch may hold several shapes (e.g. two length buckets): each
shape is its own call, where a native backend's batch ends at the first change of shape. Unlike
them, a call that fails is run again request by request, so only the guilty request fails: each
failed response carries its own `TritonError` (the python backend must never share one between
responses), with code INVALID_ARG where ONNX Runtime blames the input (index out of range, rank,
dimensions, type: ORT's INVALID_ARGUMENT status; clients see HTTP 400 / INVALID_ARGUMENT),
INTERNAL otherwise.

`initialize` refuses model files whose sha256 is not the config's `fingerprint`, as Triton's
checksum repository agent refuses them in the official image, so Triton keeps serving the files
it had loaded and the gateway's cache keys keep describing the files that answer.

It reads the knobs the native backends read, with the same meaning, so one config tunes both.
ONNX Runtime (onnxruntime_backend): `optimization.graph.level` (-1 basic, 1 extended,
2 disabled, absent: all) and the parameters `intra_op_thread_count`, `inter_op_thread_count` and
`execution_mode` (1 = parallel). OpenVINO (openvino_backend): PERFORMANCE_HINT,
INFERENCE_NUM_THREADS, COMPILATION_NUM_THREADS, NUM_STREAMS and HINT_BF16, mapped to OpenVINO
properties by `openvino_parameters.runtime_properties`, as the accuracy gate runs it.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

# Triton imports this file as `<version>.model`: the modules beside it are `<version>.<name>`
from .fingerprint import verify_fingerprint
from .input_rules import InputRules
from .openvino_parameters import MODEL_FILE as OPENVINO_MODEL
from .openvino_parameters import WEIGHTS_FILE as OPENVINO_WEIGHTS
from .openvino_parameters import runtime_properties

ONNX_MODEL = "model.onnx"
# OpenVINO properties the twin logs as the compiled model has them (Triton's log, INFO)
LOGGED = ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "ENABLE_CPU_PINNING")


def parameters_of(config):
    """{parameter: string value} of a model config (as JSON)."""
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def session_options(config):
    """ORT session options from the knobs of the native backend's config (see module docstring)."""
    import onnxruntime as ort

    levels = {
        -1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        1: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        2: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    parameters = parameters_of(config)
    level = int(config.get("optimization", {}).get("graph", {}).get("level", 0))
    options = ort.SessionOptions()
    options.graph_optimization_level = levels.get(level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    options.intra_op_num_threads = int(parameters.get("intra_op_thread_count", "0"))
    options.inter_op_num_threads = int(parameters.get("inter_op_thread_count", "0"))
    if parameters.get("execution_mode") == "1":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    return options


class OnnxRuntimeModel:
    """model.onnx in an ORT CPU session; `run(feed)` -> the outputs in `output_names` order."""

    files = (ONNX_MODEL,)

    def __init__(self, version_dir, config, output_names):
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            os.path.join(version_dir, ONNX_MODEL),
            session_options(config),
            providers=["CPUExecutionProvider"],
        )
        self.output_names = output_names

    def run(self, feed):
        return self.session.run(self.output_names, feed)

    @staticmethod
    def blames_input(error):
        """True when ORT's status is INVALID_ARGUMENT (the input, not the model, is wrong)."""
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        return isinstance(error, InvalidArgument)


class OpenVINOModel:
    """model.xml + model.bin compiled for the CPU with the config's OpenVINO backend parameters,
    and with CPU pinning off.

    Each instance of a python-backend model is a process of its own, and OpenVINO's pinning in
    each process is unaware of the others: two 1-thread processes on two cores ran at the speed
    of one (MiniLM INT8, batch 8: 395 + 397 rows/s pinned, 793 + 813 unpinned; the bare model
    through Triton, 2 instances, concurrency 32: 284 -> 456 inferences/s). Triton's OpenVINO
    backend runs every instance in one process and has no parameter for pinning, so this knob is
    the twin's own and no config sets it.
    """

    files = (OPENVINO_MODEL, OPENVINO_WEIGHTS)

    def __init__(self, version_dir, config, output_names):
        import openvino as ov
        import openvino.properties.hint as hints

        properties = {**runtime_properties(parameters_of(config)), hints.enable_cpu_pinning: False}
        path = os.path.join(version_dir, OPENVINO_MODEL)
        self.compiled = ov.Core().compile_model(path, "CPU", properties)
        self.request = self.compiled.create_infer_request()
        self.output_names = output_names
        try:
            effective = ", ".join(f"{key}={self.compiled.get_property(key)}" for key in LOGGED)
        except RuntimeError as error:  # a log line never fails the load
            effective = f"(properties unreadable: {error})"
        pb_utils.Logger.log_info(f"{version_dir}: OpenVINO {ov.__version__} runs with {effective}")

    def run(self, feed):
        answer = self.request.infer(feed)
        by_name = {port.get_any_name(): value for port, value in answer.items()}
        return [by_name[name] for name in self.output_names]

    @staticmethod
    def blames_input(error):
        """OpenVINO raises RuntimeError for everything: a shape it cannot take is the input's."""
        return "shape" in str(error).lower()


def shape_groups(feeds):
    """{(each input's shape past the batch axis): [indices of the feeds that have them]}, in the
    order the shapes first appear: the requests that can be concatenated into one call. `feeds`:
    {request index: feed}."""
    groups = {}
    for index, feed in feeds.items():
        key = tuple((name, array.shape[1:], array.dtype.str) for name, array in feed.items())
        groups.setdefault(key, []).append(index)
    return groups


def error_response(error, blames_input):
    """A response carrying its own TritonError: INVALID_ARG where the runtime blames the input."""
    code = pb_utils.TritonError.INVALID_ARG if blames_input else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{error}", code))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        is_openvino = os.path.exists(os.path.join(version_dir, OPENVINO_MODEL))
        runtime = OpenVINOModel if is_openvino else OnnxRuntimeModel
        parameters = parameters_of(config)
        fingerprint = parameters.get("fingerprint", "")
        verify_fingerprint(args["model_name"], version_dir, fingerprint, list(runtime.files))
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.rules = InputRules(config, parameters)
        self.output_names = [tensor["name"] for tensor in config["output"]]
        self.model = runtime(version_dir, config, self.output_names)
        self.runtime = "openvino" if is_openvino else "onnxruntime"

    def execute(self, requests):
        feeds = [
            {
                name: pb_utils.get_input_tensor_by_name(r, name).as_numpy()
                for name in self.input_names
            }
            for r in requests
        ]
        responses = [self._refusal(feed) for feed in feeds]
        runnable = {i: feed for i, feed in enumerate(feeds) if responses[i] is None}
        for indices in shape_groups(runnable).values():
            answers = self._run_group([feeds[i] for i in indices])
            for index, answer in zip(indices, answers, strict=True):
                responses[index] = answer
        return responses

    def _refusal(self, feed):
        """An INVALID_ARG response when `feed` breaks an input rule of the config, else None."""
        broken = self.rules.violation(feed)
        return error_response(broken, blames_input=True) if broken else None

    def _run_group(self, feeds):
        """Responses to requests of one shape: one call, or each alone when that call fails."""
        together = self._run_together(feeds) if len(feeds) > 1 else None
        if together is None:
            return [self._run_alone(feed) for feed in feeds]
        return [self._response(outputs) for outputs in together]

    def _run_together(self, feeds):
        """Each request's outputs from one call over the concatenated batch; None if it fails."""
        try:
            batch = {name: np.concatenate([f[name] for f in feeds]) for name in self.input_names}
            outputs = self.model.run(batch)
        except Exception:
            return None
        ends = np.cumsum([f[self.input_names[0]].shape[0] for f in feeds])[:-1]
        per_output = [np.split(output, ends) for output in outputs]
        return list(zip(*per_output, strict=True))

    def _run_alone(self, feed):
        try:
            return self._response(self.model.run(feed))
        except Exception as error:
            return error_response(f"{self.runtime}: {error}", self.model.blames_input(error))

    def _response(self, outputs):
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(output))
            for name, output in zip(self.output_names, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)

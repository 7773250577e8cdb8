"""Python-backend twin of an `onnxruntime_onnx` model: the same model.onnx, run by ONNX Runtime.

The bundled tritonserver has no native ONNX Runtime backend, so the local stack serves each ONNX
model through this file. Triton's dynamic batcher hands `execute` every request of one batch; they
are concatenated along the batch axis and run as one ORT call, as the native backend would.

It reads the knobs the native onnxruntime_backend reads, with the same meaning, so one config
tunes both: `optimization.graph.level` (-1 basic, 1 extended, 2 disabled, absent: all) and the
parameters `intra_op_thread_count`, `inter_op_thread_count` and `execution_mode` (1 = parallel).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

GRAPH_LEVELS = {
    -1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    1: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    2: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
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
        self.session = ort.InferenceSession(
            os.path.join(version_dir, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.output_names = [tensor["name"] for tensor in config["output"]]

    def execute(self, requests):
        try:
            feeds = {
                name: np.concatenate(
                    [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                )
                for name in self.input_names
            }
            sizes = [
                pb_utils.get_input_tensor_by_name(r, self.input_names[0]).as_numpy().shape[0]
                for r in requests
            ]
            outputs = self.session.run(self.output_names, feeds)
        except Exception as error:  # one bad batch must not take the model down
            failure = pb_utils.TritonError(f"onnxruntime: {error}")
            return [pb_utils.InferenceResponse(error=failure) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            tensors = [
                pb_utils.Tensor(name, output[start : start + size])
                for name, output in zip(self.output_names, outputs, strict=False)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

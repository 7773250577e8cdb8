"""Python-backend model for the benchmark's derived repositories: the local stack's twin
(model.onnx in ONNX Runtime, requests of one batch concatenated) plus two knobs the sweep needs,
read from the config's parameters: `graph_optimization_level` (disable|basic|extended|all) and
`ort_intra_op_threads`.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("ort_intra_op_threads", "0"))
        options.graph_optimization_level = LEVELS[parameters.get("graph_optimization_level", "all")]
        if parameters.get("ort_allow_spinning", "1") == "0":  # idle ORT threads sleep, not spin
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            os.path.join(version_dir, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.output_names = [tensor["name"] for tensor in config["output"]]
        self.types = {i.name: i.type for i in self.session.get_inputs()}

    def execute(self, requests):
        try:
            feeds = {}
            for name in self.input_names:
                arrays = [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                longest = max(a.shape[-1] for a in arrays) if arrays[0].ndim == 2 else None
                if longest is not None and any(a.shape[-1] != longest for a in arrays):
                    arrays = [np.pad(a, ((0, 0), (0, longest - a.shape[-1]))) for a in arrays]
                feeds[name] = np.concatenate(arrays)
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
                for name, output in zip(self.output_names, outputs)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

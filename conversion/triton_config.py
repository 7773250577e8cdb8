"""Typed description of a served model, rendered to Triton's own `ModelConfig` protobuf.

Every `config.pbtxt` in this project is written and read here, through
`tritonclient.grpc.model_config_pb2` and `google.protobuf.text_format`: a typo is a parse
error, not a silently ignored field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

_DATATYPES = {
    np.dtype("float32"): mc.TYPE_FP32,
    np.dtype("float16"): mc.TYPE_FP16,
    np.dtype("int64"): mc.TYPE_INT64,
    np.dtype("int32"): mc.TYPE_INT32,
    np.dtype("int8"): mc.TYPE_INT8,
    np.dtype("uint8"): mc.TYPE_UINT8,
    np.dtype("bool"): mc.TYPE_BOOL,
    np.dtype("object"): mc.TYPE_STRING,
}

FINGERPRINT_PARAMETER = "fingerprint"
# `valid_range:<input>` = "<min>,<max>" (inclusive integers): the gateways refuse values outside
# it (conversion.input_ranges finds them); gateway/model_config.py and gateway-grpc read it.
VALID_RANGE_PREFIX = "valid_range:"
# `max_length:<input>` = "<n>" (an integer): the input's one variable (-1) axis besides the batch
# may be at most n long (MiniLM's `input_ids`: 512 tokens, its position table); longer fails in
# ONNX Runtime (conversion.input_ranges.max_lengths finds it). For the gateways to refuse.
MAX_LENGTH_PREFIX = "max_length:"
# `shared_axis:<axis name>` = "<input>:<axis>,<input>:<axis>,..." (axis indices as the request
# counts them, batch = 0): the listed axes always have one length (MiniLM's `sequence`: input_ids
# and attention_mask); a request where they differ is answered wrongly by ONNX Runtime without an
# error (conversion.spec.shared_axes finds them). For the gateways to refuse.
SHARED_AXIS_PREFIX = "shared_axis:"
# Triton's checksum repository agent (github.com/triton-inference-server/checksum_repository_agent,
# shipped in the official image under /opt/tritonserver/repoagents/checksum): one parameter
# "MD5:<path relative to the model directory>" = lowercase hex MD5 per file; a mismatch fails the load.
CHECKSUM_AGENT = "checksum"


@dataclass(frozen=True)
class Tensor:
    """One input or output, without the batch dimension (Triton adds it from max_batch_size).

    `reshape`: the shape the model sees when it differs from `dims` (Triton's `reshape`).
    """

    name: str
    dtype: str
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None = None

    @classmethod
    def batched(cls, name: str, dtype: str, dims: tuple[int, ...]) -> Tensor:
        """A tensor of a batching model; one of shape [batch] alone is declared `dims: [1]`
        with `reshape: { shape: [] }`, since Triton wants non-empty dims (model_config.proto)."""
        return cls(name, dtype, dims) if dims else cls(name, dtype, (1,), reshape=())

    def to_proto_type(self) -> int:
        """The ModelConfig DataType of `dtype` (e.g. TYPE_FP32); KeyError for an unknown dtype."""
        return _DATATYPES[np.dtype(self.dtype)]

    @classmethod
    def from_proto(cls, tensor: mc.ModelInput | mc.ModelOutput) -> Tensor:
        """The tensor a config's `input`/`output` entry describes."""
        dtype = next(str(d) for d, t in _DATATYPES.items() if t == tensor.data_type)
        return cls(tensor.name, dtype, tuple(tensor.dims))


@dataclass(frozen=True)
class Batching:
    """Dynamic batching: how long a request may wait for others, and how the queue is bounded.

    `queue_timeout_us`: a request still queued after it is rejected (0: never); with
    `allow_timeout_override` a request's own `timeout` parameter (microseconds, KServe v2
    request parameters / gRPC `timeout`) applies instead when it is shorter: Triton's
    ModelQueuePolicy `allow_timeout_override` ("individual requests can set a timeout that is
    less than the default timeout value but may not increase it", model_config.proto), off by
    default, which silently ignores every client's timeout. Triton core applies a request's
    timeout only when it is below a non-zero default (PriorityQueue::PolicyQueue::Enqueue in
    src/scheduler_utils.cc), so with `queue_timeout_us` 0 client timeouts are ignored anyway.
    """

    max_queue_delay_us: int = 2000
    preferred_batch_sizes: tuple[int, ...] = ()
    queue_timeout_us: int = 0
    max_queue_size: int = 0
    allow_timeout_override: bool = True


@dataclass(frozen=True)
class EnsembleStep:
    """One member of an ensemble: `input_map`/`output_map` are {member tensor: ensemble tensor}."""

    model_name: str
    input_map: dict[str, str]
    output_map: dict[str, str]
    model_version: int = -1


@dataclass(frozen=True)
class ModelConfigSpec:
    """What the generator needs to know to write a model's config.pbtxt."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    platform: str = "onnxruntime_onnx"
    backend: str = ""
    max_batch_size: int = 64
    batching: Batching | None = field(default_factory=Batching)
    instance_count: int = 1
    instance_kind: str = "KIND_CPU"
    fingerprint: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    graph_optimization_level: int | None = None
    tensorrt_precision: str | None = None
    warmup_batch_sizes: tuple[int, ...] = ()
    # Warmup dims for variable (-1) axes, e.g. {"input_ids": (16,)}; default: every -1 becomes 1.
    warmup_dims: dict[str, tuple[int, ...]] = field(default_factory=dict)
    ensemble_steps: tuple[EnsembleStep, ...] = ()
    # {input: (lowest, highest)} valid values of index inputs, both inclusive
    valid_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    # {input: the largest length of its one variable axis besides the batch}
    max_lengths: dict[str, int] = field(default_factory=dict)
    # {axis name: ((input, axis index), ...)}: axes that always have one length
    shared_axes: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    # {path relative to the model directory, e.g. "1/model.onnx": its MD5}: the checksum agent
    checksums: dict[str, str] = field(default_factory=dict)


def build_config(spec: ModelConfigSpec) -> mc.ModelConfig:
    """Render `spec` as Triton's ModelConfig message."""
    config = mc.ModelConfig(name=spec.name, max_batch_size=spec.max_batch_size)
    if spec.platform:
        config.platform = spec.platform
    if spec.backend:
        config.backend = spec.backend
    for tensor in spec.inputs:
        entry = config.input.add(
            name=tensor.name, data_type=tensor.to_proto_type(), dims=tensor.dims
        )
        _reshape(entry, tensor)
    for tensor in spec.outputs:
        entry = config.output.add(
            name=tensor.name, data_type=tensor.to_proto_type(), dims=tensor.dims
        )
        _reshape(entry, tensor)
    if spec.batching is not None:
        batching = config.dynamic_batching
        batching.max_queue_delay_microseconds = spec.batching.max_queue_delay_us
        batching.preferred_batch_size.extend(spec.batching.preferred_batch_sizes)
        queue = spec.batching
        if queue.queue_timeout_us or queue.max_queue_size or queue.allow_timeout_override:
            policy = batching.default_queue_policy
            policy.timeout_action = mc.ModelQueuePolicy.REJECT
            policy.default_timeout_microseconds = queue.queue_timeout_us
            policy.allow_timeout_override = queue.allow_timeout_override
            policy.max_queue_size = queue.max_queue_size
    if spec.platform != "ensemble":  # an ensemble has no instances of its own
        config.instance_group.add(
            count=spec.instance_count, kind=mc.ModelInstanceGroup.Kind.Value(spec.instance_kind)
        )
    for step in spec.ensemble_steps:
        member = config.ensemble_scheduling.step.add(
            model_name=step.model_name, model_version=step.model_version
        )
        for key, value in step.input_map.items():
            member.input_map[key] = value
        for key, value in step.output_map.items():
            member.output_map[key] = value
    parameters = dict(spec.parameters)
    if spec.fingerprint:
        parameters[FINGERPRINT_PARAMETER] = spec.fingerprint
    for name, (lowest, highest) in spec.valid_ranges.items():
        parameters[VALID_RANGE_PREFIX + name] = f"{lowest},{highest}"
    for name, length in spec.max_lengths.items():
        parameters[MAX_LENGTH_PREFIX + name] = str(length)
    for name, axes in spec.shared_axes.items():
        parameters[SHARED_AXIS_PREFIX + name] = ",".join(f"{i}:{a}" for i, a in axes)
    for key, value in sorted(parameters.items()):
        config.parameters[key].string_value = value
    if spec.graph_optimization_level is not None:
        config.optimization.graph.level = spec.graph_optimization_level
    if spec.tensorrt_precision:
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(
            name="tensorrt"
        )
        accelerator.parameters["precision_mode"] = spec.tensorrt_precision
        accelerator.parameters["max_workspace_size_bytes"] = str(1 << 30)
    for batch_size in spec.warmup_batch_sizes:
        _add_warmup(config, spec, batch_size)
    if spec.checksums:
        agent = config.model_repository_agents.agents.add(name=CHECKSUM_AGENT)
        for path, md5 in sorted(spec.checksums.items()):
            agent.parameters[f"MD5:{path}"] = md5
    return config


def _reshape(entry: mc.ModelInput | mc.ModelOutput, tensor: Tensor) -> None:
    if tensor.reshape is not None:
        entry.reshape.SetInParent()  # an empty shape is a scalar per batch row
        entry.reshape.shape.extend(tensor.reshape)


def _add_warmup(config: mc.ModelConfig, spec: ModelConfigSpec, batch_size: int) -> None:
    warmup = config.model_warmup.add(name=f"zeros_batch_{batch_size}", batch_size=batch_size)
    for tensor in spec.inputs:
        warmup.inputs[tensor.name].data_type = tensor.to_proto_type()
        dims = spec.warmup_dims.get(tensor.name) or tuple(max(d, 1) for d in tensor.dims)
        warmup.inputs[tensor.name].dims.extend(dims)
        warmup.inputs[tensor.name].zero_data = True


def gpu_spec(spec: ModelConfigSpec, tensorrt_precision: str | None = "FP16") -> ModelConfigSpec:
    """The GPU twin of a CPU spec: KIND_GPU instances and, for ONNX, ORT's TensorRT accelerator.

    Written to `<model>/configs/gpu.pbtxt`; tritonserver picks it with `--model-config-name=gpu`.
    """
    from dataclasses import replace

    if spec.platform == "ensemble" or spec.backend in ("python", "openvino"):
        # ensembles have no instances; the tokenizer stays on the CPU; Triton's OpenVINO backend
        # supports only KIND_CPU instances (openvino_backend src/openvino.cc)
        return spec
    precision = tensorrt_precision if spec.platform == "onnxruntime_onnx" else None
    return replace(spec, instance_kind="KIND_GPU", tensorrt_precision=precision)


def render(config: mc.ModelConfig) -> str:
    """Text format, as Triton reads it from config.pbtxt."""
    return text_format.MessageToString(config)


def parse(text: str) -> mc.ModelConfig:
    """Parse config.pbtxt text; unknown fields raise `text_format.ParseError`."""
    return text_format.Parse(text, mc.ModelConfig())


def write_config(config: mc.ModelConfig, path: Path) -> None:
    """Write `config` as config.pbtxt text at `path` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config))


def read_config(path: Path) -> mc.ModelConfig:
    """Parse the config.pbtxt at `path`; text_format.ParseError on an unknown field."""
    return parse(path.read_text())

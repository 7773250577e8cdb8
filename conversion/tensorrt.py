"""TensorRT FP16 / INT8 plans, built with TensorRT's documented Python API.

Runs only where `import tensorrt` works and a CUDA GPU is visible; anywhere else each entry point
says so (`unavailable_reason()`) and the conversion goes on without plans. The shape logic
(optimization profiles), the calibrator's batching and the plan's config.pbtxt are plain Python
and tested without TensorRT; the build itself is unverified on the CPU-only development machines.

Plans are built from `<repo>/<model>/portable.onnx` (the unoptimized export: TensorRT's ONNX
parser does not know ORT's contrib ops such as FusedConv or Attention) with an optimization
profile per dynamic axis, and published as `<model>_trt_fp16` / `<model>_trt_int8` with
`platform: "tensorrt_plan"`. INT8 uses an IInt8EntropyCalibrator2 fed from
`<repo>/<model>/calibration.npz`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from conversion.input_ranges import index_ranges
from conversion.repository import publish
from conversion.settings import TensorRTShapes
from conversion.spec import InputSpec, shared_axes
from conversion.triton_config import Batching, ModelConfigSpec, Tensor, read_config

WORKSPACE_BYTES = 2 << 30
PRECISIONS = ("fp16", "int8")


def unavailable_reason() -> str | None:
    """None when TensorRT can build here, else the reason in one sentence."""
    try:
        import tensorrt  # noqa: F401
    except Exception as error:
        return f"TensorRT is not installed here ({type(error).__name__}: {error}); plans are built on the GPU host"
    if not _cuda_available():
        return "TensorRT is installed but no CUDA GPU is visible; plans are built on the GPU host"
    return None


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def profile_shapes(
    inputs: list[InputSpec], shapes: TensorRTShapes
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape of each input: the batch axis from `shapes.batch`, every other
    dynamic axis from `shapes.other[axis name]`, fixed axes as they are."""
    profiles = {}
    for spec in inputs:
        lows, opts, highs = [], [], []
        for axis, dim in enumerate(spec.dims):
            if isinstance(dim, int):
                low = opt = high = dim
            elif axis == 0:
                low, opt, high = shapes.batch
            elif dim in shapes.other:
                low, opt, high = shapes.other[dim]
            else:
                raise ValueError(
                    f"input '{spec.name}': no TensorRT profile range for dynamic axis '{dim}' "
                    f"(known: batch, {', '.join(shapes.other) or 'none'})"
                )
            if not 1 <= low <= opt <= high:
                raise ValueError(
                    f"input '{spec.name}' axis '{dim}': need 1 <= min <= opt <= max, got {low, opt, high}"
                )
            lows.append(low)
            opts.append(opt)
            highs.append(high)
        profiles[spec.name] = (tuple(lows), tuple(opts), tuple(highs))
    return profiles


def plan_spec(
    name: str,
    inputs: list[InputSpec],
    outputs: dict[str, tuple[int, ...]],
    max_batch_size: int,
    batching: Batching,
    warmup_dims: dict[str, tuple[int, ...]],
) -> ModelConfigSpec:
    """config.pbtxt of a plan: platform tensorrt_plan, GPU instances, same tensors and batching.

    The max batch size is capped by the profile's max batch (a plan cannot run a larger one).
    """
    return ModelConfigSpec(
        name=name,
        platform="tensorrt_plan",
        inputs=tuple(Tensor(s.name, s.dtype, s.triton_dims) for s in inputs),
        outputs=tuple(Tensor(n, "float32", d) for n, d in outputs.items()),
        max_batch_size=max_batch_size,
        batching=batching,
        instance_kind="KIND_GPU",
        warmup_batch_sizes=(1,),
        warmup_dims=warmup_dims,
    )


def calibration_batches(path: Path) -> list[dict[str, np.ndarray]]:
    """Batches saved by the pipeline as `<index>/<input name>` arrays."""
    data = np.load(path)
    batches: dict[int, dict[str, np.ndarray]] = {}
    for key in data.files:
        index, _, name = key.partition("/")
        batches.setdefault(int(index), {})[name] = data[key]
    return [batches[i] for i in sorted(batches)]


def make_calibrator(batches: list[dict[str, np.ndarray]], cache_file: Path):
    """An IInt8EntropyCalibrator2 over `batches` (device buffers held by torch.cuda)."""
    import tensorrt as trt
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.batches = batches
            self.index = 0
            self.buffers: dict[str, torch.Tensor] = {}

        def get_batch_size(self) -> int:
            return len(next(iter(self.batches[0].values())))

        def get_batch(self, names):
            if self.index >= len(self.batches):
                return None
            batch = self.batches[self.index]
            self.index += 1
            self.buffers = {
                n: torch.from_numpy(np.ascontiguousarray(batch[n])).cuda() for n in names
            }
            return [int(self.buffers[n].data_ptr()) for n in names]

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file.exists() else None

        def write_calibration_cache(self, cache) -> None:
            cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    precision: str,
    profiles: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> Path:
    """trt.Builder + OnnxParser -> serialized plan with one optimization profile."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT 8.x; default in 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profiles.items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)  # INT8 plans keep FP16 for the layers left unquantized
    if precision == "int8":
        if not calibration:
            raise ValueError("an INT8 plan needs calibration batches")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = make_calibrator(calibration, plan_path.with_suffix(".calib"))
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build the {precision} plan for {onnx_path.name}")
    plan_path.write_bytes(bytes(serialized))
    return plan_path


def build_for_model(
    repository: Path, name: str, advance: Callable[..., None] | None = None
) -> list[str]:
    """Build `<name>_trt_fp16` and `<name>_trt_int8` from the files the pipeline left in `<name>/`."""
    model_dir = repository / name
    manifest = json.loads((model_dir / "manifest.json").read_text())
    inputs = [InputSpec(i["name"], i["dtype"], tuple(i["dims"])) for i in manifest["inputs"]]
    profile = manifest["tensorrt"]["profile"]
    shapes = TensorRTShapes(
        batch=tuple(profile["batch"]),
        other={k: tuple(v) for k, v in profile.items() if k != "batch"},
    )
    profiles = profile_shapes(inputs, shapes)
    config = read_config(model_dir / "config.pbtxt")
    outputs = {o.name: tuple(o.dims) for o in config.output}
    queue = config.dynamic_batching
    batching = Batching(
        queue.max_queue_delay_microseconds,
        (),
        queue.default_queue_policy.default_timeout_microseconds,
        queue.default_queue_policy.max_queue_size,
    )
    warmup_dims = {n: p[1][1:] for n, p in profiles.items()}
    ranges = index_ranges(model_dir / "portable.onnx")  # TensorRT reads out-of-range ids silently
    built = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in PRECISIONS:
            plan = Path(tmp) / f"{precision}.plan"
            calibration = (
                calibration_batches(model_dir / "calibration.npz") if precision == "int8" else None
            )
            build_engine(model_dir / "portable.onnx", plan, precision, profiles, calibration)
            served = f"{name}_trt_{precision}"
            spec = plan_spec(
                served,
                inputs,
                outputs,
                min(config.max_batch_size, shapes.batch[2]),
                batching,
                warmup_dims,
            )
            publish(
                repository,
                replace(spec, valid_ranges=ranges, shared_axes=shared_axes(inputs)),
                plan,
            )
            built.append(served)
            if advance:
                advance()
    return built


def build_repository(repository: Path) -> dict[str, list[str] | str]:
    """Plans for every converted model (one with a manifest.json) in the repository."""
    reason = unavailable_reason()
    names = sorted(p.parent.name for p in repository.glob("*/manifest.json"))
    if reason:
        return {n: reason for n in names}
    return {n: build_for_model(repository, n) for n in names}

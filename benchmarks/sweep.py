"""Derived Triton repositories (one model per config point) and the bundled tritonserver on them.

Every config is Triton's own `ModelConfig` protobuf, read from the canonical repository with
`conversion.triton_config.read_config`, changed field by field and written back with
`write_config` (text_format): no string templates, and a typo is an error.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from benchmarks.scrape import scrape, value
from conversion.fingerprint import version_fingerprint
from conversion.triton_config import read_config, write_config
from localstack.probes import http_ok
from localstack.processes import ProcessRegistry, wait_until
from localstack.stack import StackPorts
from localstack.tritonserver import TritonInstallation, derive_local_repository


@dataclass(frozen=True)
class ConfigPoint:
    """One served configuration of a canonical model."""

    variant: str  # canonical model name: digits, digits_int8, minilm, ...
    max_batch_size: int = 64
    queue_delay_us: int | None = 2000  # None: no dynamic batching
    instances: int = 1
    graph_level: str = "all"
    threads: int = 0  # threads per instance (ORT intra-op, OpenVINO inference); 0 = the default
    portable: bool = False  # serve <model>/portable.onnx (the unoptimized export) instead
    preferred: tuple[int, ...] = ()  # dynamic_batching.preferred_batch_size; () = none

    @property
    def name(self) -> str:
        delay = "nobatch" if self.queue_delay_us is None else f"d{self.queue_delay_us}"
        preferred = f"_p{'-'.join(map(str, self.preferred))}" if self.preferred else ""
        return (
            f"{self.variant}{'_portable' if self.portable else ''}__b{self.max_batch_size}"
            f"_{delay}_i{self.instances}_g{self.graph_level}_t{self.threads}{preferred}"
        )

    @property
    def label(self) -> str:
        batching = (
            "no batching"
            if self.queue_delay_us is None
            else (f"batch<={self.max_batch_size}, delay {self.queue_delay_us}us")
        )
        model = f"{self.variant} (unoptimized export)" if self.portable else self.variant
        return f"{model}, {batching}, {self.instances} inst, graph {self.graph_level}"

    def onnx_file(self, canonical: Path) -> Path:
        if self.portable:
            return canonical / self.variant / "portable.onnx"
        return canonical / self.variant / "1" / "model.onnx"

    def with_(self, **changes) -> ConfigPoint:
        return replace(self, **changes)


# ConfigPoint.graph_level -> optimization.graph.level as onnxruntime_backend reads it (absent: all).
GRAPH_LEVELS = {"disable": 2, "basic": -1, "extended": 1, "all": None}


def threads_parameter(config: mc.ModelConfig) -> str:
    """The config parameter that sets threads per instance: `INFERENCE_NUM_THREADS` for Triton's
    OpenVINO backend, `intra_op_thread_count` for onnxruntime_backend (the twin reads both)."""
    return "INFERENCE_NUM_THREADS" if config.backend == "openvino" else "intra_op_thread_count"


def apply_point(config: mc.ModelConfig, point: ConfigPoint) -> None:
    """Set the knobs of `point` in `config` (in place): max_batch_size, dynamic_batching's
    max_queue_delay_microseconds and preferred_batch_size (the rest of the queue policy is kept),
    the instance_group count (its kind is kept), optimization.graph.level and the threads per
    instance (`threads_parameter`; the backends' own names, which the local twin reads too).

    Warm-up samples larger than the new max_batch_size are dropped: Triton refuses to load a
    model whose warm-up batch exceeds it.
    """
    config.max_batch_size = point.max_batch_size
    if point.queue_delay_us is None:
        config.ClearField("dynamic_batching")
    else:
        config.dynamic_batching.max_queue_delay_microseconds = point.queue_delay_us
        del config.dynamic_batching.preferred_batch_size[:]
        config.dynamic_batching.preferred_batch_size.extend(point.preferred)
    kind = (
        config.instance_group[0].kind if config.instance_group else mc.ModelInstanceGroup.KIND_CPU
    )
    del config.instance_group[:]
    config.instance_group.add(count=point.instances, kind=kind)
    config.optimization.ClearField("graph")
    if GRAPH_LEVELS[point.graph_level] is not None:
        config.optimization.graph.level = GRAPH_LEVELS[point.graph_level]
    config.parameters[threads_parameter(config)].string_value = str(point.threads)
    warmups = [w for w in config.model_warmup if w.batch_size <= point.max_batch_size]
    del config.model_warmup[:]
    config.model_warmup.extend(warmups)


def derived_config(
    source: mc.ModelConfig, point: ConfigPoint, served_queue: bool = False
) -> mc.ModelConfig:
    """The canonical config of one sweep point, named `point.name`, without warm-up. With
    `served_queue` its queue policy is the served one (a request queued past the served timeout
    fails, as it would in production: what the tuner must see); otherwise a deep queue (30 s
    timeout, 4,096 requests) so overload shows as latency (the sweep's curves)."""
    config = mc.ModelConfig()
    config.CopyFrom(source)
    config.name = point.name
    config.ClearField("model_warmup")
    apply_point(config, point)
    if point.queue_delay_us is not None and not served_queue:
        policy = config.dynamic_batching.default_queue_policy
        policy.timeout_action = mc.ModelQueuePolicy.REJECT
        policy.default_timeout_microseconds = 30_000_000
        policy.max_queue_size = 4096
    return config


def write_repository(canonical: Path, target: Path, points: list[ConfigPoint]) -> list[str]:
    """One canonical model per point (model.onnx linked), then its local twin, as `make up` does."""
    staging = target.with_name(target.name + "-canonical")
    if staging.exists():
        shutil.rmtree(staging)
    for point in dict.fromkeys(points):
        write_point(canonical, staging, point)
    return derive_local_repository(staging, target)


def write_point(
    canonical: Path, staging: Path, point: ConfigPoint, served_queue: bool = False
) -> Path:
    """`<staging>/<point.name>`: the canonical model of one point (queue policy: `derived_config`),
    returns the folder. Its version folder links every file of the variant's (ONNX, OpenVINO
    IR...), so the variant's fingerprint still holds; a `portable` point links
    <variant>/portable.onnx as model.onnx and is fingerprinted again. FileNotFoundError when the
    file to serve is missing."""
    source = point.onnx_file(canonical) if point.portable else canonical / point.variant / "1"
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing")
    model_dir = staging / point.name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    version = model_dir / "1"
    version.mkdir(parents=True)
    served = read_config(canonical / point.variant / "config.pbtxt")
    config = derived_config(served, point, served_queue)
    if point.portable:
        (version / "model.onnx").symlink_to(source.resolve())
        # the twin loads only what this describes: the fingerprint of the file it serves
        config.parameters["fingerprint"].string_value = version_fingerprint(version, ["model.onnx"])
    else:
        for entry in source.iterdir():
            (version / entry.name).symlink_to(entry.resolve())
    write_config(config, model_dir / "config.pbtxt")
    return model_dir


def with_dependencies(canonical: Path, models: list[str]) -> list[str]:
    """`models` plus every model their ensemble steps call, recursively."""
    wanted, queue = [], list(models)
    while queue:
        name = queue.pop(0)
        if name in wanted or not (canonical / name / "config.pbtxt").exists():
            continue
        wanted.append(name)
        config = read_config(canonical / name / "config.pbtxt")
        queue += [step.model_name for step in config.ensemble_scheduling.step]
    return wanted


def write_canonical_variant(
    canonical: Path, target: Path, models: dict[str, dict], keep: list[str] | None = None
) -> Path:
    """A copy of the canonical repository (files linked) for LocalStack, holding only `keep` and
    their ensemble dependencies (all models when None), with some configs changed: `models` maps
    name -> {"max_batch_size", "queue_delay_us", "instances", "threads"}."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    names = with_dependencies(canonical, keep) if keep is not None else None
    for config_path in sorted(canonical.glob("*/config.pbtxt")):
        name = config_path.parent.name
        if names is not None and name not in names:
            continue
        model_dir = target / name
        model_dir.mkdir()
        for entry in config_path.parent.iterdir():
            if entry.name != "config.pbtxt":
                (model_dir / entry.name).symlink_to(entry.resolve())
        config = read_config(config_path)
        change = models.get(name)
        if change:
            config.max_batch_size = change.get("max_batch_size", config.max_batch_size)
            if "queue_delay_us" in change:
                if change["queue_delay_us"] is None:
                    config.ClearField("dynamic_batching")
                else:
                    config.dynamic_batching.max_queue_delay_microseconds = change["queue_delay_us"]
            if "instances" in change:
                for group in config.instance_group:
                    group.count = change["instances"]
            if "threads" in change:
                config.parameters[threads_parameter(config)].string_value = str(change["threads"])
        write_config(config, model_dir / "config.pbtxt")
    return target


class TritonServer:
    """The bundled tritonserver on a derived repository, on free ports."""

    def __init__(self, run_dir: Path, repository: Path) -> None:
        self.run_dir = run_dir.resolve()
        self.repository = repository.resolve()
        ports = StackPorts.free()
        self.http_port, self.grpc_port, self.metrics_port = (
            ports.triton_http,
            ports.triton_grpc,
            ports.triton_metrics,
        )
        self.processes = ProcessRegistry(self.run_dir)

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout_s: float = 120.0) -> None:
        triton = TritonInstallation.locate()
        models = sorted(p.parent.name for p in self.repository.glob("*/config.pbtxt"))
        command = triton.command(
            self.repository, self.run_dir, self.http_port, self.grpc_port, self.metrics_port
        )
        self.processes.start("triton", command, triton.environment())
        base = f"http://127.0.0.1:{self.http_port}/v2/models"
        ok = wait_until(
            lambda: (
                not self.processes.running("triton")
                or all(http_ok(f"{base}/{m}/ready") for m in models)
            ),
            timeout_s,
            0.2,
        )
        if not (ok and self.processes.running("triton")):
            tail = self.processes.log_tail("triton", 25)
            self.stop()
            raise RuntimeError(f"tritonserver did not become ready:\n{tail}")

    def stop(self) -> None:
        self.processes.stop("triton")

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def scrape_counts(metrics_url: str) -> dict[str, tuple[float, float]]:
    """model -> (nv_inference_count, nv_inference_exec_count) summed over versions."""
    samples = scrape(metrics_url, timeout_s=5)
    models = {
        dict(labels).get("model")
        for name, labels in samples
        if name.startswith("nv_inference_count")
    }
    return {
        model: (
            value(samples, "nv_inference_count", model=model),
            value(samples, "nv_inference_exec_count", model=model),
        )
        for model in models
        if model
    }


def average_batch(before: dict, after: dict, model: str) -> float | None:
    b, a = before.get(model, (0.0, 0.0)), after.get(model, (0.0, 0.0))
    executions = a[1] - b[1]
    return (a[0] - b[0]) / executions if executions > 0 else None

"""The served result of `make optimize`: the winner written into the canonical repository, the
configuration it replaced kept, and `tuning.json` (what was measured, where, why this one).

Configs are changed through Triton's ModelConfig protobuf (`conversion.triton_config`), field by
field (`benchmarks.sweep.apply_point`): fingerprints, checksums, warm-up, queue policy and the GPU
config (`configs/gpu.pbtxt`) stay as the conversion wrote them. The replaced config goes to
`<variant>/configs/previous.pbtxt` (Triton reads `configs/<name>.pbtxt` only when started with
`--model-config-name=<name>`, so it is inert until asked for).

A record is reused when its key matches: the sha256 of every candidate's version files, the
objective, the concurrency and a signature of this machine (CPU model, cores, memory, ONNX
Runtime and tritonserver wheel versions).
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

from benchmarks.hardware import local_hardware
from benchmarks.sweep import ConfigPoint, apply_point
from benchmarks.tuning import Target
from conversion.fingerprint import version_fingerprint
from conversion.repository import combined_fingerprint
from conversion.triton_config import FINGERPRINT_PARAMETER, read_config, render, write_config

RECORD = "tuning.json"
PREVIOUS = Path("configs") / "previous.pbtxt"


def machine_signature() -> dict:
    """What makes a measurement valid here: CPU, cores, memory (GiB), runtime versions."""
    memory = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        line = next(x for x in meminfo.read_text().splitlines() if x.startswith("MemTotal"))
        memory = round(int(line.split()[1]) / 2**20)
    versions = {}
    for package in ("onnxruntime", "nvidia-pytriton"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": local_hardware()["description"],
        "hardware_id": local_hardware()["id"],
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "machine": platform.machine(),
        **versions,
    }


def record_key(repository: Path, target: Target, slo_p99_ms: float, concurrency: int) -> dict:
    """The inputs a record depends on (compared whole when deciding to reuse it)."""
    return {
        "models": {
            name: version_fingerprint(repository / name / "1") for name in target.candidates
        },
        "machine": machine_signature(),
        "slo_p99_ms": slo_p99_ms,
        "concurrency": concurrency,
    }


def reusable(repository: Path, target: Target, key: dict) -> dict | None:
    """The model's tuning.json when it was made from exactly `key`, else None."""
    path = repository / target.model / RECORD
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("key") == key else None


def _replace_config(path: Path, config) -> bool:
    """Write `config` to `path`, keeping the old text as configs/previous.pbtxt; False if same."""
    old = path.read_text()
    new = render(config)
    if old == new:
        return False
    write_config(read_config(path), path.parent / PREVIOUS)
    path.write_text(new)
    return True


def point_ensemble(repository: Path, target: Target, encoder: str):
    """The entry ensemble pointing at `encoder`, with the fingerprint the conversion gives such an
    ensemble (`conversion.text_serving`: tokenizer's and encoder's, combined): the gateway keys its
    cache on it, so answers cached from the previous encoder are never served for the new one."""
    config = read_config(repository / target.entry / "config.pbtxt")
    for step in config.ensemble_scheduling.step:
        if step.model_name != target.tokenizer:
            step.model_name = encoder
    prints = [
        read_config(repository / name / "config.pbtxt").parameters[FINGERPRINT_PARAMETER]
        for name in (target.tokenizer, encoder)
    ]
    config.parameters[FINGERPRINT_PARAMETER].string_value = combined_fingerprint(
        *(p.string_value for p in prints)
    )
    encoder_batch = read_config(repository / encoder / "config.pbtxt").max_batch_size
    config.max_batch_size = min(config.max_batch_size, encoder_batch)
    return config


def write_served(repository: Path, target: Target, point: ConfigPoint) -> list[str]:
    """Serve `point`: its knobs into `<variant>/config.pbtxt` and, for a text model, the entry
    ensemble pointed at the variant. Returns the configs that changed (their old text kept)."""
    path = repository / point.variant / "config.pbtxt"
    config = read_config(path)
    apply_point(config, point)
    changed = [str(path)] if _replace_config(path, config) else []
    if target.ensemble:
        entry = repository / target.entry / "config.pbtxt"
        if _replace_config(entry, point_ensemble(repository, target, point.variant)):
            changed.append(str(entry))
    return changed


def write_record(repository: Path, target: Target, record: dict) -> Path:
    """`<repo>/<model>/tuning.json` (overwritten)."""
    path = repository / target.model / RECORD
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path

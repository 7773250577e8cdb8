"""Writes served models into a Triton model repository.

Layout of one served model: `<repo>/<name>/config.pbtxt` (CPU), `<name>/configs/gpu.pbtxt`
(picked by `tritonserver --model-config-name=gpu`), `<name>/1/model.onnx` or `model.plan` or
`model.py`. Every config carries a sha256 `fingerprint` parameter: the gateway keys its cache
on it, so a redeploy never serves a stale cached answer.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

from conversion.triton_config import ModelConfigSpec, build_config, gpu_spec, write_config

MODEL_VERSION = "1"
GPU_CONFIG = Path("configs") / "gpu.pbtxt"


def fingerprint(path: Path) -> str:
    """sha256 of the model file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def combined_fingerprint(*parts: str) -> str:
    """sha256 over several fingerprints (ensembles: members + tokenizer files)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_configs(
    model_dir: Path, spec: ModelConfigSpec, gpu: ModelConfigSpec | None = None
) -> None:
    """Write `<model_dir>/config.pbtxt` and, with `gpu`, `<model_dir>/configs/gpu.pbtxt`."""
    write_config(build_config(spec), model_dir / "config.pbtxt")
    if gpu is not None:
        write_config(build_config(gpu), model_dir / GPU_CONFIG)


def publish(
    repository: Path,
    spec: ModelConfigSpec,
    model_file: Path,
    gpu_precision: str | None = "FP16",
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Copy `model_file` (and `extra_files`, by target name) into version 1 and write both configs."""
    model_dir = repository / spec.name
    version_dir = model_dir / MODEL_VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / f"model{model_file.suffix}"
    if model_file.resolve() != target.resolve():
        shutil.copyfile(model_file, target)
    parts = [fingerprint(target)]
    for name, path in sorted((extra_files or {}).items()):
        shutil.copyfile(path, version_dir / name)
        parts.append(fingerprint(version_dir / name))
    stamp = parts[0] if len(parts) == 1 else combined_fingerprint(*parts)
    spec = replace(spec, fingerprint=stamp)
    gpu = None if spec.platform == "tensorrt_plan" else gpu_spec(spec, gpu_precision)
    write_configs(model_dir, spec, gpu)
    return model_dir


def remove(repository: Path, name: str) -> bool:
    """Delete a served model (a variant that no longer passes the gate must not stay served)."""
    model_dir = repository / name
    if model_dir.is_dir():
        shutil.rmtree(model_dir)
        return True
    return False

"""Writes served models into a Triton model repository: `<repo>/<name>/1/model.onnx` + config."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

from conversion.triton_config import ModelConfigSpec, build_config, write_config

MODEL_VERSION = "1"


def fingerprint(path: Path) -> str:
    """sha256 of the model file: the gateway keys its cache on it, so a redeploy never hits stale."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def publish(repository: Path, spec: ModelConfigSpec, model_file: Path) -> Path:
    """Copy `model_file` into the repository and write its config with the file's fingerprint."""
    model_dir = repository / spec.name
    version_dir = model_dir / MODEL_VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / f"model{model_file.suffix}"
    if model_file.resolve() != target.resolve():
        shutil.copyfile(model_file, target)
    write_config(build_config(replace(spec, fingerprint=fingerprint(target))), model_dir / "config.pbtxt")
    return model_dir

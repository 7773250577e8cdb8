"""Writes served models into a Triton model repository.

Layout of one served model: `<repo>/<name>/config.pbtxt` (CPU), `<name>/configs/gpu.pbtxt`
(picked by `tritonserver --model-config-name=gpu`), `<name>/1/model.onnx` or `model.plan` or
`model.py`. Every config carries a sha256 `fingerprint` parameter (`conversion.fingerprint`): the
gateway keys its cache on it, so a redeploy never serves a stale cached answer. Models the official
image serves natively also name Triton's checksum repository agent with the MD5 of each file, so
the official server refuses to load a file that is not the one this config was written for.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from conversion.external_data import external_data_files
from conversion.fingerprint import file_digest, version_fingerprint
from conversion.spec import SpecError
from conversion.triton_config import ModelConfigSpec, build_config, gpu_spec, write_config

MODEL_VERSION = "1"
GPU_CONFIG = Path("configs") / "gpu.pbtxt"
# A served model's name is its folder in the repository and a path segment of the KServe v2 URL
# (/v2/models/<name>/infer): letters, digits, `_`, `.`, `-`, not starting with a dot or a dash
# (so never `.` or `..`: Triton's ValidateModelName refuses `..` and `/`, server PR #8400).
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


class ModelNameError(SpecError):
    """A model name that is unsafe as a folder of the repository, or taken by another model."""


def check_model_name(name: str) -> None:
    """Raise ModelNameError unless `name` matches MODEL_NAME (1-200 characters of `[A-Za-z0-9_.-]`,
    not starting with `.` or `-`): a name such as `..`, `../x` or `` would write outside the
    repository or into its root."""
    if not MODEL_NAME.fullmatch(name):
        raise ModelNameError(
            f"model name {name!r}: use 1-200 letters, digits, '_', '.' or '-', not starting "
            "with '.' or '-' (it is a folder of the repository and part of the request URL)"
        )


def owners(repository: Path) -> dict[str, str]:
    """{served name: the converted model that owns it}, from every `<repo>/<model>/manifest.json`
    (a model owns its own name and every name its manifest lists as `served`)."""
    owned: dict[str, str] = {}
    for manifest in sorted(repository.glob("*/manifest.json")):
        model = manifest.parent.name
        try:
            served = json.loads(manifest.read_text()).get("served", [])
        except (OSError, ValueError):
            served = []
        for name in [model, *served]:
            owned.setdefault(name, model)
    return owned


def claim_names(repository: Path, model: str, names: Iterable[str]) -> None:
    """Check that converting `model` may write `names` (its own name and its variants'): raise
    ModelNameError for an unsafe name, or for one that another converted model serves (it would be
    silently replaced, and that model's manifest would still list it)."""
    check_model_name(model)
    owned = owners(repository) if repository.is_dir() else {}
    for name in names:
        owner = owned.get(name, model)
        if owner != model:
            raise ModelNameError(
                f"model name {model!r}: it would write '{name}', which model '{owner}' serves "
                f"in {repository} (see {owner}/manifest.json); choose another --name"
            )


def fingerprint(path: Path) -> str:
    """sha256 of one file: the fingerprint of a version served from that one file."""
    return file_digest(path)


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
    """Copy `model_file` (and `extra_files`, by target name) into version 1 and write both configs.

    An ONNX model's external data files (a model of 2 GiB or more) are copied beside it under the
    names its graph gives them.

    The configs carry the fingerprint of those files and, for the checksum agent, their MD5s.
    """
    model_dir = repository / spec.name
    version_dir = model_dir / MODEL_VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / f"model{model_file.suffix}"
    if model_file.resolve() != target.resolve():
        shutil.copyfile(model_file, target)
    files = [target.name]
    for name in external_data_files(model_file) if model_file.suffix == ".onnx" else []:
        shutil.copyfile(model_file.parent / name, version_dir / name)  # found by the same name
        files.append(name)
    for name, path in sorted((extra_files or {}).items()):
        shutil.copyfile(path, version_dir / name)
        files.append(name)
    checksums = {f"{MODEL_VERSION}/{n}": file_digest(version_dir / n, "md5") for n in files}
    spec = replace(spec, fingerprint=version_fingerprint(version_dir, files), checksums=checksums)
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

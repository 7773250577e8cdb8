"""The fingerprint of a served model version: sha256 over the files its answers depend on.

The converter writes it into config.pbtxt (parameter `fingerprint`), the gateway keys its cache on
it, and the python-backend models (the local stack's ONNX twin, the tokenizer) verify it when they
load, so a version is never answered under another file's fingerprint:

- a model read from named files (`onnxruntime_onnx`: `model.onnx`, `tensorrt_plan`:
  `model.plan`): one file gives its sha256, what `sha256sum 1/model.onnx` prints;
- a python model: every file of the version directory, `__pycache__` aside (Python writes it there
  when Triton imports `<version>/model.py`).
Several files give the sha256 of their `sha256sum` listing, sorted by path:
`cd 1 && sha256sum model.py tokenizer.json ... | sha256sum`.

Standard library only, Python 3.10+: the converter copies this file next to the `model.py` of the
python models that verify themselves (the official Triton image runs them with its own Python).
"""

from __future__ import annotations

import hashlib
import os

SKIPPED_DIRECTORIES = ("__pycache__",)
FIX = "re-run the converter, or update the fingerprint"


class FingerprintMismatch(RuntimeError):
    """A version directory's files do not hash to the fingerprint its config.pbtxt carries."""


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of one file's bytes (`algorithm`: any hashlib name, e.g. sha256, md5)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_files(version_dir: str | os.PathLike) -> list[str]:
    """Every file under `version_dir` as a '/'-separated relative path, sorted, `__pycache__` aside."""
    found = []
    for root, directories, files in os.walk(version_dir):
        directories[:] = [d for d in directories if d not in SKIPPED_DIRECTORIES]
        relative = os.path.relpath(root, version_dir)
        for name in files:
            path = name if relative == "." else os.path.join(relative, name)
            found.append(path.replace(os.sep, "/"))
    return sorted(found)


def version_fingerprint(version_dir: str | os.PathLike, files: list[str] | None = None) -> str:
    """The fingerprint of `files` (relative paths; None: every file) in `version_dir`.

    Raises FileNotFoundError when a named file is missing and ValueError when there is none.
    """
    names = sorted(files) if files is not None else version_files(version_dir)
    if not names:
        raise ValueError(f"{version_dir} holds no file to fingerprint")
    digests = [file_digest(os.path.join(version_dir, name)) for name in names]
    if len(names) == 1:
        return digests[0]
    listing = "".join(f"{digest}  {name}\n" for digest, name in zip(digests, names, strict=True))
    return hashlib.sha256(listing.encode()).hexdigest()


def verify_fingerprint(
    model: str, version_dir: str | os.PathLike, expected: str, files: list[str] | None = None
) -> None:
    """Raise FingerprintMismatch, naming the model, the files and both values, unless they agree.

    A model without a fingerprint (`expected` empty) is not checked: its cache key is its version.
    """
    if not expected:
        return
    names = sorted(files) if files is not None else version_files(version_dir)
    actual = version_fingerprint(version_dir, names)
    if actual != expected:
        raise FingerprintMismatch(
            f"model {model}: the files in {version_dir} ({', '.join(names)}) have fingerprint "
            f"{actual}, but config.pbtxt says {expected}: the files changed without their config; "
            f"{FIX} (parameter 'fingerprint')"
        )

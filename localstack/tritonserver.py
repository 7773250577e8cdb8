"""The real tritonserver shipped in the nvidia-pytriton wheel, and the repository it serves locally.

The canonical repository uses `platform: "onnxruntime_onnx"` and `backend: "openvino"` for the
official Triton image. The bundled server has only the python backend, so
`derive_local_repository` writes a twin of each ONNX and OpenVINO model: same name, tensors,
max_batch_size, dynamic_batching, instance_group and parameters, with `backend: "python"` running
the same model.onnx in ONNX Runtime, or model.xml + model.bin in OpenVINO Runtime with the knobs
the OpenVINO backend reads (linked, not copied). The
bundled server has no repository agents either: the `model_repository_agents` section (the
checksum agent) is left out of every derived config, and the twin verifies the `fingerprint`
itself when it loads.

One setting differs on purpose: a batched twin's inputs of variable shape get
`allow_ragged_batch: true`. Triton's dynamic batcher ends a batch at the first request whose shape
differs from the batch's (user guide, "Ragged Batching"), so with two length buckets interleaved
the native backends run batches of ~3 rows; the python backend hands the twin each request's own
tensors, so the twin can take both buckets in one execution and run one call per shape
(`twin/model.py`). The native backends cannot take a ragged batch this way.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from conversion import fingerprint as fingerprint_module
from conversion import openvino_parameters
from conversion.triton_config import read_config, write_config
from localstack.errors import StackError

TWIN_MODEL = Path(__file__).parent / "twin" / "model.py"
INPUT_RULES_MODULE = TWIN_MODEL.parent / "input_rules.py"
FINGERPRINT_MODULE = Path(fingerprint_module.__file__)
OPENVINO_PARAMETERS_MODULE = Path(openvino_parameters.__file__)
# model files of each twinned model, by its config: (platform, backend)
TWINNED_FILES = {
    ("onnxruntime_onnx", ""): ("model.onnx",),
    ("", "openvino"): (openvino_parameters.MODEL_FILE, openvino_parameters.WEIGHTS_FILE),
}
STUB_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class TritonInstallation:
    """Paths inside the installed nvidia-pytriton wheel."""

    binary: Path
    python_backend: Path
    stub: Path
    libraries: Path

    @classmethod
    def locate(cls) -> TritonInstallation:
        """The tritonserver binary, python backend, this Python's backend stub and the bundled
        libraries of the installed nvidia-pytriton wheel. StackError when the wheel is not
        installed or one of those paths is missing (e.g. no stub for this Python version)."""
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise StackError(
                "tritonserver not found: install it with `pip install nvidia-pytriton==0.7.0`"
            )
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
        found = cls(
            binary=root / "bin" / "tritonserver",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / STUB_PYTHON / "triton_python_backend_stub",
            libraries=root.parent.parent / "nvidia_pytriton.libs",
        )
        for path in (found.binary, found.python_backend, found.stub, found.libraries):
            if not path.exists():
                raise StackError(f"tritonserver installation incomplete: {path} is missing")
        return found

    def backend_directory(self, run_dir: Path) -> Path:
        """A backends folder holding the python backend with this interpreter's stub beside it."""
        backends = run_dir / "backends"
        python = backends / "python"
        if python.exists():
            shutil.rmtree(python)
        shutil.copytree(self.python_backend, python, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(self.stub, python / "triton_python_backend_stub")
        return backends

    def command(
        self, repository: Path, run_dir: Path, http: int, grpc: int, metrics: int
    ) -> list[str]:
        """The tritonserver command line: explicit model control, loopback only, all models loaded."""
        return [
            str(self.binary),
            f"--model-repository={repository}",
            f"--backend-directory={self.backend_directory(run_dir)}",
            "--model-control-mode=explicit",
            "--load-model=*",
            "--http-address=127.0.0.1",
            f"--http-port={http}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
        ]

    def environment(self) -> dict[str, str]:
        """Library path for the server and stub; this venv first on PATH so the stub finds numpy."""
        env = dict(os.environ)
        libdirs = [str(self.libraries), sysconfig.get_config_var("LIBDIR") or ""]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(None, [*libdirs, env.get("LD_LIBRARY_PATH", "")])
        )
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env


def derive_local_repository(source: Path, target: Path) -> list[str]:
    """Write the locally servable twin of `source` into `target` (replaced if present); return
    the model names. StackError when `source` is missing or holds no model the local server
    can serve (TensorRT plans are skipped)."""
    if not source.is_dir():
        raise StackError(f"model repository {source} does not exist: run `make convert` first")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    names = [
        config_path.parent.name
        for config_path in sorted(source.glob("*/config.pbtxt"))
        if derive_model(config_path.parent, target / config_path.parent.name)
    ]
    if not names:
        raise StackError(f"model repository {source} holds no model: run `make convert` first")
    return names


def derive_model(model_dir: Path, twin_dir: Path) -> bool:
    """(Re)write one model's local twin; False for models the local server cannot serve
    (tensorrt_plan). StackError for an ONNX model without `<version>/model.onnx`."""
    config = read_config(model_dir / "config.pbtxt")
    if config.platform == "tensorrt_plan":
        return False  # needs a GPU and TensorRT; served by the official image only
    if twin_dir.exists():
        shutil.rmtree(twin_dir)
    files = TWINNED_FILES.get((config.platform, config.backend))
    if files:
        _write_twin(config, model_dir, twin_dir, files)
    else:
        shutil.copytree(model_dir, twin_dir, symlinks=True)
        if config.HasField("model_repository_agents"):
            config.ClearField("model_repository_agents")
            write_config(config, twin_dir / "config.pbtxt")
    return True


def _write_twin(config, model_dir: Path, twin_dir: Path, files: tuple[str, ...]) -> None:
    config.platform = ""
    config.backend = "python"
    # The twin reads optimization.graph like the native backend; accelerators need a GPU.
    config.optimization.ClearField("execution_accelerators")
    config.ClearField("model_repository_agents")  # the twin checks the fingerprint itself
    allow_ragged_batches(config)
    versions = [d for d in model_dir.iterdir() if d.is_dir() and (d / files[0]).exists()]
    if not versions:
        raise StackError(f"model {model_dir.name}: no <version>/{files[0]} in {model_dir}")
    for version in versions:
        twin_version = twin_dir / version.name
        twin_version.mkdir(parents=True)
        for name in files:
            (twin_version / name).symlink_to((version / name).resolve())
        shutil.copyfile(TWIN_MODEL, twin_version / "model.py")
        shutil.copyfile(FINGERPRINT_MODULE, twin_version / "fingerprint.py")
        shutil.copyfile(OPENVINO_PARAMETERS_MODULE, twin_version / "openvino_parameters.py")
        shutil.copyfile(INPUT_RULES_MODULE, twin_version / "input_rules.py")
    write_config(config, twin_dir / "config.pbtxt")


def allow_ragged_batches(config) -> None:
    """Mark each input of variable shape ragged (`allow_ragged_batch`), so Triton's dynamic batcher
    puts requests of different shapes in one execution of the twin, which runs one call per shape.
    Unbatched models (max_batch_size 0) and fixed-shape inputs are left as they are."""
    if config.max_batch_size > 0 and config.HasField("dynamic_batching"):
        for tensor in config.input:
            if -1 in tensor.dims:
                tensor.allow_ragged_batch = True

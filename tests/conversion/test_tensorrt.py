"""TensorRT runs on no machine here: the shape logic, skip message, plan config and the builder's
use of the TensorRT API are tested, the latter against a recording fake `tensorrt` module."""

import sys
import types

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from conversion import tensorrt
from conversion.settings import TensorRTShapes
from conversion.spec import InputSpec
from conversion.triton_config import read_config


def test_profiles_cover_the_batch_and_sequence_axes():
    inputs = [
        InputSpec("input_ids", "int64", ("batch", "sequence")),
        InputSpec("image", "float32", ("batch", 1, 8, 8)),
    ]
    profiles = tensorrt.profile_shapes(
        inputs, TensorRTShapes(batch=(1, 8, 64), other={"sequence": (1, 64, 128)})
    )
    assert profiles["input_ids"] == ((1, 1), (8, 64), (64, 128))
    assert profiles["image"] == ((1, 1, 8, 8), (8, 1, 8, 8), (64, 1, 8, 8))


def test_an_unknown_dynamic_axis_or_an_inverted_range_is_refused():
    with pytest.raises(ValueError, match="no TensorRT profile range for dynamic axis 'sequence'"):
        tensorrt.profile_shapes(
            [InputSpec("x", "int64", ("batch", "sequence"))], TensorRTShapes(other={})
        )
    with pytest.raises(ValueError, match="min <= opt <= max"):
        tensorrt.profile_shapes(
            [InputSpec("x", "float32", ("batch", 4))], TensorRTShapes(batch=(8, 1, 64))
        )


def test_without_tensorrt_the_step_is_skipped_with_a_clear_message(
    tmp_path, digits_converted, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails, as on every machine here
    reason = tensorrt.unavailable_reason()
    assert reason.startswith("TensorRT is not installed here") and "GPU host" in reason
    assert tensorrt.build_repository(digits_converted.repository) == {"digits": reason}
    assert digits_converted.report.skipped["tensorrt"].startswith("TensorRT is not installed here")


def test_tensorrt_installed_without_a_gpu_is_skipped_too(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(tensorrt, "_cuda_available", lambda: False)
    assert "no CUDA GPU is visible" in tensorrt.unavailable_reason()


class FakeTensorRT(types.ModuleType):
    """Just enough of the TensorRT 10 Python API to record what the builder asks for."""

    def __init__(self, calls):
        super().__init__("tensorrt")
        self.calls = calls
        recorder = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        class Profile:
            def set_shape(self, name, low, opt, high):
                calls.append(("set_shape", name, tuple(low), tuple(opt), tuple(high)))

        class Config:
            int8_calibrator = None

            def set_memory_pool_limit(self, pool, size):
                calls.append(("workspace", size))

            def set_flag(self, flag):
                calls.append(("flag", flag))

            def add_optimization_profile(self, profile):
                calls.append(("add_profile",))

            def set_calibration_profile(self, profile):
                calls.append(("calibration_profile",))

        class Parser:
            num_errors = 0

            def __init__(self, network, logger):
                pass

            def parse(self, data):
                calls.append(("parse", len(data)))
                return True

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                calls.append(("network", flags))
                return object()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                calls.append(("build", config.int8_calibrator is not None))
                recorder.last_calibrator = config.int8_calibrator
                return b"PLAN"

        class IInt8EntropyCalibrator2:
            def __init__(self):
                pass

        self.Logger, self.Builder, self.OnnxParser = Logger, Builder, Parser
        self.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
        self.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8")
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
        self.NetworkDefinitionCreationFlag = (
            types.SimpleNamespace()
        )  # TensorRT 10: explicit batch only


def test_plans_are_built_with_the_documented_api_and_published_as_tensorrt_plan(
    tmp_path, digits_converted, monkeypatch
):
    import shutil

    repository = tmp_path / "repo"
    shutil.copytree(digits_converted.repository, repository)
    calls = []
    fake = FakeTensorRT(calls)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(tensorrt, "_cuda_available", lambda: True)
    assert tensorrt.unavailable_reason() is None

    built = tensorrt.build_repository(repository)

    assert built == {"digits": ["digits_trt_fp16", "digits_trt_int8"]}
    assert ("network", 0) in calls
    assert calls.count(("set_shape", "image", (1, 1, 8, 8), (16, 1, 8, 8), (64, 1, 8, 8))) == 2
    assert ("flag", "INT8") in calls and ("calibration_profile",) in calls
    assert [c for c in calls if c[0] == "build"] == [("build", False), ("build", True)]
    calibrator = fake.last_calibrator
    assert calibrator.get_batch_size() == 32 and len(calibrator.batches) == 2
    for name in ("digits_trt_fp16", "digits_trt_int8"):
        config = read_config(repository / name / "config.pbtxt")
        assert config.platform == "tensorrt_plan"
        assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
        assert (
            config.max_batch_size == 64
            and config.dynamic_batching.max_queue_delay_microseconds == 2000
        )
        assert (repository / name / "1" / "model.plan").read_bytes() == b"PLAN"
        assert config.parameters["fingerprint"].string_value
        assert not (repository / name / "configs").exists()  # a plan is GPU-only: one config


def test_the_local_stack_skips_plans(tmp_path, digits_converted, monkeypatch):
    from localstack.tritonserver import derive_local_repository

    repository = tmp_path / "repo"
    import shutil

    shutil.copytree(digits_converted.repository, repository)
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT([]))
    monkeypatch.setattr(tensorrt, "_cuda_available", lambda: True)
    tensorrt.build_repository(repository)
    names = derive_local_repository(repository, tmp_path / "local")
    assert "digits_trt_fp16" not in names and "digits_int8" in names


def test_the_cli_command_reports_the_skip(tmp_path, digits_converted):
    import subprocess

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conversion",
            "tensorrt",
            "--repository",
            str(digits_converted.repository),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "digits: TensorRT skipped: TensorRT is not installed here" in " ".join(
        result.stderr.split()
    )


def test_reconverting_a_model_removes_its_stale_plans(tmp_path, digits_conversion, monkeypatch):
    from conversion.pipeline import convert
    from tests.conversion.conftest import quiet_console, tuned

    repository = tmp_path / "repo"
    (repository / "digits_trt_fp16" / "1").mkdir(parents=True)
    convert(tuned(digits_conversion, quantization={"variants": ()}), repository, quiet_console())
    assert not (repository / "digits_trt_fp16").exists()

import json

from conversion.repository import fingerprint


def test_the_manifest_records_variants_sizes_accuracy_verdicts_and_latency(digits_converted):
    repository = digits_converted.repository
    manifest = json.loads((repository / "digits" / "manifest.json").read_text())
    assert manifest["validation_samples"] == 270
    assert manifest["gate"]["max_accuracy_drop"] == 0.005
    assert set(manifest["variants"]) == {"fp32", "fp16", "int8_dynamic", "int8_static"}
    for variant in manifest["variants"].values():
        assert variant["size_bytes"] > 0
        assert set(variant["latency_ms"]) == {"1", "8", "32"}
        assert variant["passed"] in (True, False)
        assert "accuracy" in variant["metrics"] and "max_abs_deviation" in variant["metrics"]
    assert manifest["int8_selected"] == "int8_static"
    served = manifest["variants"]["int8_static"]["served_as"]
    assert served == "digits_int8"
    assert (
        manifest["variants"]["int8_static"]["size_bytes"]
        == (repository / served / "1" / "model.onnx").stat().st_size
    )
    assert manifest["tensorrt"]["status"].startswith("TensorRT is not installed")


def test_each_served_model_carries_the_sha256_of_its_file(digits_converted):
    from conversion.triton_config import read_config

    for name in ("digits", "digits_fp16", "digits_int8"):
        model_dir = digits_converted.repository / name
        config = read_config(model_dir / "config.pbtxt")
        assert config.parameters["fingerprint"].string_value == fingerprint(
            model_dir / "1" / "model.onnx"
        )


def test_the_tensorrt_inputs_are_kept_next_to_the_model(digits_converted):
    model_dir = digits_converted.repository / "digits"
    assert (model_dir / "portable.onnx").exists() and (model_dir / "calibration.npz").exists()


def test_each_onnx_model_names_the_checksum_agent_with_the_md5_of_its_file(digits_converted):
    import hashlib

    from conversion.triton_config import read_config

    for name in ("digits", "digits_fp16", "digits_int8"):
        model_dir = digits_converted.repository / name
        md5 = hashlib.md5((model_dir / "1/model.onnx").read_bytes()).hexdigest()
        for config_file in ("config.pbtxt", "configs/gpu.pbtxt"):
            (agent,) = read_config(model_dir / config_file).model_repository_agents.agents
            assert agent.name == "checksum"
            assert dict(agent.parameters) == {"MD5:1/model.onnx": md5}

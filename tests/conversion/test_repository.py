from conversion.repository import fingerprint


def test_each_served_model_carries_the_sha256_of_its_file(digits_converted):
    from conversion.triton_config import read_config

    assert "digits" in digits_converted.report.served  # the others are served only if faster here
    for name in digits_converted.report.served:
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

    for name in digits_converted.report.served:
        model_dir = digits_converted.repository / name
        md5 = hashlib.md5((model_dir / "1/model.onnx").read_bytes()).hexdigest()
        for config_file in ("config.pbtxt", "configs/gpu.pbtxt"):
            (agent,) = read_config(model_dir / config_file).model_repository_agents.agents
            assert agent.name == "checksum"
            assert dict(agent.parameters) == {"MD5:1/model.onnx": md5}

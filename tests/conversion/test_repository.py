import json

import numpy as np
import pytest

from conversion.pipeline import written_names
from conversion.repository import ModelNameError, check_model_name, claim_names, fingerprint


def test_each_served_model_carries_the_sha256_of_its_version_files(digits_converted):
    from conversion.fingerprint import version_fingerprint
    from conversion.triton_config import read_config

    assert "digits" in digits_converted.report.served
    for name in digits_converted.report.served:  # ONNX files and OpenVINO IRs (.xml + .bin)
        model_dir = digits_converted.repository / name
        config = read_config(model_dir / "config.pbtxt")
        files = list((model_dir / "1").iterdir())
        if len(files) == 1:
            expected = fingerprint(files[0])
        else:  # sha256 over the listing of each file's sha256
            expected = version_fingerprint(model_dir / "1")
        assert config.parameters["fingerprint"].string_value == expected


def test_the_tensorrt_inputs_are_kept_next_to_the_model(digits_converted):
    model_dir = digits_converted.repository / "digits"
    assert (model_dir / "portable.onnx").exists() and (model_dir / "calibration.npz").exists()


def test_each_served_model_names_the_checksum_agent_with_the_md5_of_its_files(digits_converted):
    import hashlib

    from conversion.triton_config import read_config

    for name in digits_converted.report.served:  # ONNX files and OpenVINO IRs (.xml + .bin)
        model_dir = digits_converted.repository / name
        md5 = {
            f"MD5:1/{p.name}": hashlib.md5(p.read_bytes()).hexdigest()
            for p in (model_dir / "1").iterdir()
        }
        assert "MD5:1/model.onnx" in md5 or {"MD5:1/model.xml", "MD5:1/model.bin"} == set(md5)
        for config_file in ("config.pbtxt", "configs/gpu.pbtxt"):
            (agent,) = read_config(model_dir / config_file).model_repository_agents.agents
            assert agent.name == "checksum"
            assert dict(agent.parameters) == md5


@pytest.mark.parametrize("name", ["..", ".", "", "../x", "a/b", ".hidden", "-rf", "a b", "x" * 201])
def test_a_name_that_is_not_a_safe_folder_name_is_refused(name):
    with pytest.raises(ModelNameError, match="use 1-200 letters, digits"):
        check_model_name(name)


@pytest.mark.parametrize("name", ["digits", "my-model.v2", "_x", "A9"])
def test_a_name_of_letters_digits_and_separators_is_accepted(name):
    check_model_name(name)


def _served(repository, model, served):
    (repository / model).mkdir(parents=True)
    (repository / model / "manifest.json").write_text(json.dumps({"served": served}))


def test_a_name_another_model_serves_is_refused_naming_its_owner(tmp_path):
    _served(tmp_path, "twoin", ["twoin", "twoin_fp16"])
    with pytest.raises(ModelNameError, match="'twoin_fp16', which model 'twoin' serves"):
        claim_names(tmp_path, "twoin_fp16", written_names("twoin_fp16"))


def test_a_model_whose_variant_would_replace_another_model_is_refused(tmp_path):
    _served(tmp_path, "user_fp16", ["user_fp16"])
    with pytest.raises(ModelNameError, match="'user_fp16', which model 'user_fp16' serves"):
        claim_names(tmp_path, "user", written_names("user"))


def test_a_model_may_replace_its_own_served_names(tmp_path):
    _served(tmp_path, "twoin", ["twoin", "twoin_fp16"])
    claim_names(tmp_path, "twoin", written_names("twoin"))
    claim_names(tmp_path / "not-yet-made", "twoin", written_names("twoin"))


def test_a_published_model_with_external_data_carries_its_data_file_and_its_checksum(tmp_path):
    import hashlib

    from conversion.external_data import copy_onnx
    from conversion.repository import publish
    from conversion.triton_config import ModelConfigSpec, Tensor, read_config
    from tests.conversion.test_external_data import answers, linear_with_external_weights

    source = linear_with_external_weights(tmp_path / "src")
    large = copy_onnx(source, tmp_path / "work" / "fp32.onnx", limit=1024)
    spec = ModelConfigSpec("big", (Tensor("x", "float32", (64,)),), (Tensor("y", "float32", (8,)),))
    model_dir = publish(tmp_path / "repo", spec, large)
    assert np.allclose(answers(model_dir / "1" / "model.onnx"), answers(large))
    (agent,) = read_config(model_dir / "config.pbtxt").model_repository_agents.agents
    data = (model_dir / "1" / "fp32.onnx.data").read_bytes()
    assert agent.parameters["MD5:1/fp32.onnx.data"] == hashlib.md5(data).hexdigest()

"""The locally served repository is a faithful twin of the canonical one."""

from __future__ import annotations

import shutil

import pytest

from conversion.triton_config import parse, read_config, write_config
from localstack.errors import StackError
from localstack.tritonserver import (
    TritonInstallation,
    allow_ragged_batches,
    derive_local_repository,
)
from tests.conftest import REPO_ROOT


def test_each_onnx_model_becomes_a_python_backend_twin_with_the_same_serving_config(
    model_repository, tmp_path
):
    names = derive_local_repository(model_repository, tmp_path / "local")
    assert "digits" in names
    original = read_config(model_repository / "digits/config.pbtxt")
    twin = read_config(tmp_path / "local/digits/config.pbtxt")

    assert (twin.backend, twin.platform) == ("python", "")
    assert twin.name == original.name
    assert twin.input == original.input and twin.output == original.output
    assert twin.max_batch_size == original.max_batch_size
    assert twin.dynamic_batching == original.dynamic_batching
    assert twin.instance_group == original.instance_group
    assert twin.parameters["fingerprint"] == original.parameters["fingerprint"]
    model_link = tmp_path / "local/digits/1/model.onnx"
    assert model_link.is_symlink()
    assert model_link.resolve() == (model_repository / "digits/1/model.onnx").resolve()
    assert (tmp_path / "local/digits/1/model.py").exists()
    assert (tmp_path / "local/digits/1/fingerprint.py").read_bytes() == (
        REPO_ROOT / "conversion/fingerprint.py"
    ).read_bytes()


def test_a_batched_twins_inputs_of_variable_length_take_ragged_batches(model_repository, tmp_path):
    derive_local_repository(model_repository, tmp_path / "local")
    original = read_config(model_repository / "minilm/config.pbtxt")
    twin = read_config(tmp_path / "local/minilm/config.pbtxt")

    assert [(t.name, t.allow_ragged_batch) for t in twin.input] == [
        ("input_ids", True),
        ("attention_mask", True),
    ]
    for tensor in twin.input:
        tensor.allow_ragged_batch = False
    assert twin.input == original.input
    assert not any(t.allow_ragged_batch for t in original.input)


def test_fixed_shape_inputs_and_models_without_a_dynamic_batcher_take_no_ragged_batches():
    fixed = parse('max_batch_size: 8 dynamic_batching {} input { name: "x" dims: 64 }')
    unbatched = parse('max_batch_size: 0 input { name: "x" dims: [-1, -1] }')
    no_batcher = parse('max_batch_size: 8 input { name: "x" dims: -1 }')

    for config in (fixed, unbatched, no_batcher):
        allow_ragged_batches(config)
        assert not config.input[0].allow_ragged_batch


def test_the_checksum_agent_is_left_out_for_the_server_without_repository_agents(
    model_repository, tmp_path
):
    source = tmp_path / "source"
    for name in ("digits", "minilm_tokenizer"):
        shutil.copytree(model_repository / name, source / name)
        config = read_config(source / name / "config.pbtxt")
        config.model_repository_agents.agents.add(name="checksum").parameters["MD5:1/x"] = "0"
        write_config(config, source / name / "config.pbtxt")

    derive_local_repository(source, tmp_path / "local")

    for name in ("digits", "minilm_tokenizer"):
        twin = read_config(tmp_path / "local" / name / "config.pbtxt")
        assert not twin.HasField("model_repository_agents")
        assert twin.parameters["fingerprint"].string_value


def test_tensorrt_plans_are_left_out_and_other_models_copied_as_they_are(
    model_repository, tmp_path
):
    source = tmp_path / "source"
    shutil.copytree(model_repository / "digits", source / "digits")
    (source / "plan/1").mkdir(parents=True)
    (source / "plan/config.pbtxt").write_text(
        'name: "plan"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n'
    )
    (source / "tokenizer/1").mkdir(parents=True)
    (source / "tokenizer/config.pbtxt").write_text('name: "tokenizer"\nbackend: "python"\n')
    (source / "tokenizer/1/model.py").write_text("# python model\n")

    names = derive_local_repository(source, tmp_path / "local")

    assert names == ["digits", "tokenizer"]
    assert (tmp_path / "local/tokenizer/1/model.py").read_text() == "# python model\n"


def test_a_missing_or_empty_repository_is_one_clear_error(tmp_path):
    with pytest.raises(StackError, match="does not exist: run `make convert`"):
        derive_local_repository(tmp_path / "nowhere", tmp_path / "local")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StackError, match="holds no model"):
        derive_local_repository(tmp_path / "empty", tmp_path / "local")


def test_an_onnx_model_without_its_file_is_named_in_the_error(model_repository, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(model_repository / "digits", source / "digits")
    (source / "digits/1/model.onnx").unlink()
    with pytest.raises(StackError, match=r"model digits: no <version>/model\.onnx"):
        derive_local_repository(source, tmp_path / "local")


def test_the_bundled_server_and_this_pythons_stub_are_found():
    triton = TritonInstallation.locate()
    assert triton.binary.name == "tritonserver" and triton.stub.exists()


def test_a_missing_binary_is_one_clear_error(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(StackError, match="pip install nvidia-pytriton"):
        TritonInstallation.locate()

"""ONNX models that keep their weights in external data files."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conversion.external_data import copy_onnx, external_data_files
from conversion.spec import SpecError

WEIGHTS = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)


def linear_with_external_weights(folder):
    """`folder/linear.onnx` (x [batch, 64] -> y [batch, 8]) whose weights are in linear.onnx.data,
    as torch.onnx.export writes by default."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "linear.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="linear.onnx.data")
    return path


def answers(path):
    x = np.ones((2, 64), np.float32)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]


def test_a_model_with_its_weights_beside_it_is_copied_with_them_inline(tmp_path):
    source = linear_with_external_weights(tmp_path / "source")
    assert external_data_files(source) == ["linear.onnx.data"]
    target = copy_onnx(source, tmp_path / "work" / "exported.onnx")
    assert external_data_files(target) == []
    np.testing.assert_allclose(answers(target), np.ones((2, 64)) @ WEIGHTS, rtol=1e-5)


def test_a_model_over_the_size_limit_keeps_its_weights_in_one_file_beside_the_copy(tmp_path):
    source = linear_with_external_weights(tmp_path / "source")
    target = copy_onnx(source, tmp_path / "work" / "exported.onnx", limit=1024)
    assert external_data_files(target) == ["exported.onnx.data"]
    assert (tmp_path / "work" / "exported.onnx.data").is_file()
    np.testing.assert_allclose(answers(target), np.ones((2, 64)) @ WEIGHTS, rtol=1e-5)


def test_a_model_whose_external_data_is_missing_is_refused_naming_the_file(tmp_path):
    source = linear_with_external_weights(tmp_path / "source")
    (tmp_path / "source" / "linear.onnx.data").unlink()
    with pytest.raises(SpecError, match=r"keeps its weights in external data 'linear\.onnx\.data'"):
        copy_onnx(source, tmp_path / "work" / "exported.onnx")

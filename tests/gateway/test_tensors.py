"""Client values become typed tensors, or a clear TensorError (-> 400)."""

import numpy as np
import pytest

from gateway.tensors import TensorError, tensor_from_values


def test_nested_numbers_become_the_models_datatype():
    tensor = tensor_from_values("x", "FP32", [[1, 2], [3, 4]])
    assert tensor.array.dtype == np.float32 and tensor.shape == (2, 2)


@pytest.mark.parametrize(
    ("datatype", "values", "shape", "message"),
    [
        ("FP32", [[1, 2], [3]], None, "rectangular"),
        ("FP32", ["a", "b"], None, "numbers"),
        ("INT64", [1.5], None, "integer"),
        ("INT8", [300], None, "out of range"),
        ("FP32", [1, 2, 3], [2, 2], "do not fill"),
        ("FP32", [1], [-1], "non-negative"),
        ("COMPLEX", [1], None, "unknown datatype"),
        ("BYTES", [1, 2], None, "strings"),
    ],
)
def test_bad_values_are_refused_with_a_reason(datatype, values, shape, message):
    with pytest.raises(TensorError, match=message):
        tensor_from_values("x", datatype, values, shape)


def test_strings_become_bytes():
    assert tensor_from_values("t", "BYTES", [["héllo"]]).array.tolist() == [["héllo".encode()]]


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("FP32", 1e39), ("FP32", -3.5e38), ("FP16", 65520.0), ("FP16", -70000.0)],
)
def test_a_finite_value_beyond_the_datatype_is_refused_naming_the_input(datatype, value):
    with pytest.raises(TensorError, match=f"input 'x': value .* is out of range for {datatype}"):
        tensor_from_values("x", datatype, [0.0, value])


def test_the_largest_values_of_a_datatype_and_nan_and_infinity_are_kept():
    assert tensor_from_values("x", "FP32", [3.4028235e38]).array[0] == np.finfo(np.float32).max
    assert tensor_from_values("x", "FP16", [65504.0]).array[0] == 65504
    kept = tensor_from_values("x", "FP32", [float("nan"), float("inf"), -float("inf")]).array
    assert np.isnan(kept[0]) and kept[1] == np.inf and kept[2] == -np.inf

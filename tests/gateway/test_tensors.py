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

"""Non-finite values are written as Triton writes them, and literals too large are refused."""

import json

import numpy as np
import orjson
import pytest

from gateway.errors import GatewayError
from gateway.json_values import check_literal_overflow, json_values
from gateway.tensors import Tensor, tensor_from_values


def written(array: np.ndarray, datatype: str) -> bytes:
    return orjson.dumps({"v": json_values(array, datatype)}, option=orjson.OPT_SERIALIZE_NUMPY)


def test_nan_and_infinities_are_written_as_bare_tokens_never_null():
    values = np.array([[1.5, np.nan], [np.inf, -np.inf]], np.float32)
    assert written(values, "FP32") == b'{"v":[[1.5,NaN],[Infinity,-Infinity]]}'
    assert written(values.astype(np.float16), "FP16") == b'{"v":[[1.5,NaN],[Infinity,-Infinity]]}'


def test_finite_values_are_written_as_orjson_writes_them():
    values = np.array([0.1, -2.0, 3e38], np.float32)
    assert written(values, "FP32") == orjson.dumps({"v": values}, option=orjson.OPT_SERIALIZE_NUMPY)


def test_what_is_written_reads_back_with_pythons_json_as_the_same_values():
    values = np.array([np.nan, 1.0, -np.inf], np.float64)
    read = json.loads(written(values, "FP64"))["v"]
    assert np.isnan(read[0]) and read[1:] == [1.0, -np.inf]


def predict_body(text: str) -> bytes:
    return ('{"model": "m", "inputs": {"x": [' + text + "]}}").encode()


def inputs_of(document, name):
    return document["inputs"][name]


@pytest.mark.parametrize(
    ("text", "datatype"),
    [("1.0, 1e309", "FP64"), ("-1e309", "FP32"), ("1" + "0" * 400, "FP64")],
)
def test_a_literal_beyond_a_double_is_a_400_naming_the_input(text, datatype):
    # pydantic-core reads such a literal as infinity: the tensor holds one
    tensor = Tensor("x", datatype, np.array([np.inf], np.dtype(datatype.replace("FP", "float"))))
    with pytest.raises(GatewayError, match=f"input 'x': value .* is out of range for {datatype}"):
        check_literal_overflow(predict_body(text), [tensor], inputs_of)


def test_infinity_and_nan_tokens_are_values_not_overflows():
    body = predict_body("Infinity, -Infinity, NaN, 3.4028235e38")
    tensor = tensor_from_values("x", "FP32", [np.inf, -np.inf, np.nan, 3.4028235e38])
    check_literal_overflow(body, [tensor], inputs_of)  # no error

"""Index values outside their valid range and empty sequences are refused before Triton."""

import numpy as np
import pytest

from gateway.errors import GatewayError
from gateway.tensors import Tensor
from gateway.triton_client import ModelInfo, TensorInfo
from gateway.validation import validate_request


def token_model(datatype: str = "INT64", **changes) -> ModelInfo:
    fields = {
        "name": "minilm",
        "version": "1",
        "fingerprint": "f",
        "max_batch_size": 64,
        "inputs": {"input_ids": TensorInfo("input_ids", datatype, (-1, -1))},
        "outputs": {"embedding": TensorInfo("embedding", "FP32", (-1, 384))},
        "valid_ranges": {"input_ids": (0, 30521)},
        **changes,
    }
    return ModelInfo(**fields)


def ids(values, datatype: str = "INT64") -> Tensor:
    dtype = {"INT64": np.int64, "INT32": np.int32, "UINT64": np.uint64}[datatype]
    return Tensor("input_ids", datatype, np.array(values, dtype=dtype))


def refusal(info: ModelInfo, tensor: Tensor) -> str:
    with pytest.raises(GatewayError) as raised:
        validate_request(info, [tensor], None)
    assert raised.value.status == 400
    return raised.value.message


def test_ids_at_both_bounds_pass():
    validate_request(token_model(), [ids([[0, 101, 30521]])], None)


@pytest.mark.parametrize(
    ("values", "datatype", "first"),
    [
        ([[101, 40000, -1, 102]], "INT64", "40000"),
        ([[101, -5]], "INT64", "-5"),
        ([[2**64 - 1]], "UINT64", "18446744073709551615"),
        ([[30522]], "INT32", "30522"),
    ],
)
def test_the_first_id_outside_the_range_is_named_with_input_and_range(values, datatype, first):
    """The messages are gateway-grpc's too (gateway-grpc/validation_test.go)."""
    message = refusal(token_model(datatype), ids(values, datatype))
    assert message == (
        f"input 'input_ids': value {first} is outside the valid range [0, 30521] "
        "(config parameter valid_range:input_ids)"
    )


def test_a_model_without_a_range_takes_any_id():
    validate_request(token_model(valid_ranges={}), [ids([[10**9]])], None)


def test_an_empty_sequence_is_refused_unless_the_model_allows_it():
    empty = ids(np.zeros((1, 0)))
    assert refusal(token_model(), empty) == (
        "input 'input_ids': shape [1, 0] has an empty axis, which the model does not accept "
        "(config parameter allow_empty:input_ids)"
    )
    validate_request(token_model(allow_empty=frozenset({"input_ids"})), [empty], None)


def test_only_variable_axes_count_as_empty():
    declared_zero = {"input_ids": TensorInfo("input_ids", "INT64", (-1, 0))}
    validate_request(token_model(inputs=declared_zero), [ids(np.zeros((1, 0)))], None)

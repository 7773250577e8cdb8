"""The config parameters the gateways read: fingerprints, valid ranges, empty inputs, steps."""

import pytest

from conversion.triton_config import ModelConfigSpec, Tensor, build_config
from gateway.errors import GatewayError
from gateway.model_config import (
    allow_empty,
    combined_fingerprint,
    ensemble_steps,
    own_fingerprint,
    valid_ranges,
)


def config(**parameters: str) -> dict:
    return {"name": "m", "parameters": {k: {"string_value": v} for k, v in parameters.items()}}


def test_what_the_converter_writes_is_what_the_gateway_reads():
    from google.protobuf import json_format

    spec = ModelConfigSpec(
        name="minilm",
        inputs=(Tensor("input_ids", "int64", (-1,)),),
        outputs=(Tensor("embedding", "float32", (384,)),),
        fingerprint="abc",
        valid_ranges={"input_ids": (0, 30521)},
    )
    written = json_format.MessageToDict(build_config(spec), preserving_proto_field_name=True)
    assert valid_ranges(written) == {"input_ids": (0, 30521)}
    assert own_fingerprint(written) == "abc"


def test_valid_ranges_are_inclusive_integer_pairs_per_input():
    ranges = valid_ranges(config(**{"valid_range:ids": "0,9", "valid_range:types": "-1,1"}))
    assert ranges == {"ids": (0, 9), "types": (-1, 1)}


@pytest.mark.parametrize("value", ["0-9", "9,0", "a,b", "1,2,3", ""])
def test_a_malformed_valid_range_is_a_server_error_naming_the_parameter(value):
    with pytest.raises(GatewayError) as raised:
        valid_ranges(config(**{"valid_range:ids": value}))
    assert raised.value.status == 500
    assert raised.value.message == (
        f"model 'm': config parameter valid_range:ids = '{value}' is not '<min>,<max>' "
        "(inclusive integers)"
    )


def test_allow_empty_is_true_only_when_the_value_says_true():
    parameters = {"allow_empty:a": "true", "allow_empty:b": " TRUE ", "allow_empty:c": "false"}
    assert allow_empty(config(**parameters)) == {"a", "b"}


def test_a_model_without_a_fingerprint_parameter_has_none():
    assert own_fingerprint(config()) == ""
    assert own_fingerprint(config(fingerprint="f1")) == "f1"


def test_ensemble_steps_are_read_in_order_with_latest_as_an_empty_version():
    ensemble = {
        "platform": "ensemble",
        "ensemble_scheduling": {
            "step": [
                {"model_name": "tokenizer", "model_version": "-1"},
                {"model_name": "encoder", "model_version": "3"},
            ]
        },
    }
    assert ensemble_steps(ensemble) == [("tokenizer", ""), ("encoder", "3")]
    assert ensemble_steps({"platform": "onnxruntime_onnx"}) == []


def test_an_ensembles_fingerprint_names_each_step_and_its_fingerprint():
    combined = combined_fingerprint("e1", [("tokenizer", "t1"), ("encoder", "m1")])
    assert combined == "e1|tokenizer=t1|encoder=m1"
    assert combined != combined_fingerprint("e1", [("tokenizer", "t1"), ("encoder", "m2")])

"""The config parameters the gateways read: fingerprints, valid ranges, maximum lengths, empty
inputs, steps."""

import pytest

from conversion.triton_config import ModelConfigSpec, Tensor, build_config
from gateway.errors import GatewayError
from gateway.model_config import (
    allow_empty,
    batches_dynamically,
    combined_fingerprint,
    ensemble_steps,
    max_lengths,
    own_fingerprint,
    row_cache,
    shared_axes,
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
        max_lengths={"input_ids": 512},
        shared_axes={"sequence": (("input_ids", 1), ("attention_mask", 1))},
    )
    written = json_format.MessageToDict(build_config(spec), preserving_proto_field_name=True)
    assert valid_ranges(written) == {"input_ids": (0, 30521)}
    assert max_lengths(written) == {"input_ids": 512}
    assert shared_axes(written) == {"sequence": (("input_ids", 1), ("attention_mask", 1))}
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


def test_max_lengths_are_positive_integers_per_input_with_spaces_allowed():
    lengths = max_lengths(config(**{"max_length:ids": "512", "max_length:mask": " +512 "}))
    assert lengths == {"ids": 512, "mask": 512}


@pytest.mark.parametrize("value", ["", "abc", "0", "-1", "1.5", "1,2", "1_000", str(2**63)])
def test_a_malformed_max_length_is_a_server_error_naming_the_parameter(value):
    with pytest.raises(GatewayError) as raised:
        max_lengths(config(**{"max_length:ids": value}))
    assert raised.value.status == 500
    assert raised.value.message == (
        f"model 'm': config parameter max_length:ids = '{value}' is not '<n>' (a positive integer)"
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


BATCHING = {
    "name": "m",
    "max_batch_size": 8,
    "dynamic_batching": {},
    "output": [{"name": "y", "dims": ["10"]}],
}


def test_rows_are_cached_by_default_where_the_model_batches_dynamically():
    assert row_cache(BATCHING, batches_dynamically(BATCHING))


def test_rows_are_not_cached_by_default_without_dynamic_batching():
    config = {k: v for k, v in BATCHING.items() if k != "dynamic_batching"}
    assert not row_cache(config, batches_dynamically(config))


def test_rows_are_never_cached_for_a_model_without_a_batch_axis():
    config = {
        **BATCHING,
        "max_batch_size": 0,
        "parameters": {"row_cache": {"string_value": "true"}},
    }
    assert not row_cache(config, True)


def test_rows_are_not_cached_by_default_when_an_output_has_a_variable_axis():
    assert not row_cache({**BATCHING, "output": [{"name": "y", "dims": ["-1"]}]}, True)


def test_the_row_cache_parameter_turns_it_on_or_off():
    on = {**BATCHING, "parameters": {"row_cache": {"string_value": " TRUE "}}}
    off = {**BATCHING, "parameters": {"row_cache": {"string_value": "false"}}}
    assert row_cache(on, False) and not row_cache(off, True)


def test_a_row_cache_parameter_that_is_not_true_or_false_is_a_500_naming_it():
    config = {**BATCHING, "parameters": {"row_cache": {"string_value": "yes"}}}
    with pytest.raises(GatewayError) as raised:
        row_cache(config, True)
    assert raised.value.status == 500 and "row_cache = 'yes'" in str(raised.value.message)


def test_shared_axes_list_inputs_and_axes_with_spaces_and_colons_in_names_allowed():
    groups = shared_axes(
        config(**{"shared_axis:seq": " ids : 1 , a:b:+2 ", "shared_axis:n": "x:0,x:1"})
    )
    assert groups == {"seq": (("ids", 1), ("a:b", 2)), "n": (("x", 0), ("x", 1))}


@pytest.mark.parametrize(
    "value",
    ["", "ids:1", "ids,mask", "ids:-1,mask:1", "ids:one,mask:1", ":1,mask:1", f"a:1,b:{2**63}"],
)
def test_a_malformed_shared_axis_is_a_server_error_naming_the_parameter(value):
    with pytest.raises(GatewayError) as raised:
        shared_axes(config(**{"shared_axis:seq": value}))
    assert raised.value.status == 500
    assert raised.value.message == (
        f"model 'm': config parameter shared_axis:seq = '{value}' is not "
        "'<input>:<axis>,<input>:<axis>[,...]'"
    )

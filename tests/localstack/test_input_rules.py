"""The twin refuses a request that breaks an input rule of its config, as the gateways word it."""

from __future__ import annotations

import numpy as np
import pytest

from localstack.twin.input_rules import InputRules

CONFIG = {
    "max_batch_size": 64,
    "input": [{"name": "input_ids", "dims": [-1]}, {"name": "attention_mask", "dims": ["-1"]}],
}
PARAMETERS = {
    "shared_axis:sequence": "input_ids:1, attention_mask:1",
    "max_length:input_ids": "512",
    "max_length:attention_mask": "512",
    "valid_range:input_ids": "0,30521",
    "fingerprint": "abc",
}
RULES = InputRules(CONFIG, PARAMETERS)


def feed(ids: list[list[int]], mask_length: int | None = None) -> dict[str, np.ndarray]:
    array = np.array(ids, np.int64).reshape(len(ids), -1)
    length = array.shape[1] if mask_length is None else mask_length
    return {"input_ids": array, "attention_mask": np.ones((len(ids), length), np.int64)}


def test_a_request_that_keeps_every_rule_passes():
    assert RULES.violation(feed([[101, 2003, 102], [101, 0, 30521]])) is None


def test_inputs_that_disagree_on_a_shared_axis_are_named():
    assert RULES.violation(feed([[101, 2003, 102]], mask_length=2)) == (
        "inputs 'input_ids' and 'attention_mask' disagree on the length of axis 'sequence': "
        "3 vs 2 (config parameter shared_axis:sequence)"
    )


@pytest.mark.parametrize("value", [-1, 30522, 40000])
def test_a_value_outside_the_valid_range_is_named(value):
    assert RULES.violation(feed([[101, 2003, 102], [101, value, 102]])) == (
        f"input 'input_ids': value {value} is outside the valid range [0, 30521] "
        "(config parameter valid_range:input_ids)"
    )


def test_a_variable_axis_longer_than_max_length_is_named():
    assert RULES.violation(feed([[101] * 513])) == (
        "input 'input_ids': length 513 exceeds the model's maximum 512 "
        "(config parameter max_length:input_ids)"
    )


def test_an_empty_variable_axis_is_refused_unless_allowed():
    empty = feed([[]])
    assert RULES.violation(empty) == (
        "input 'input_ids': shape [1, 0] has an empty axis, which the model does not accept "
        "(config parameter allow_empty:input_ids)"
    )
    allowed = InputRules(
        CONFIG,
        {**PARAMETERS, "allow_empty:input_ids": "true", "allow_empty:attention_mask": "true"},
    )
    assert allowed.violation(empty) is None


def test_a_model_without_rules_takes_any_request():
    assert InputRules(CONFIG, {}).violation(feed([[40000] * 600], mask_length=3)) is None


def test_an_unbatched_models_axes_count_from_zero():
    config = {"max_batch_size": 0, "input": [{"name": "x", "dims": [-1]}]}
    rules = InputRules(config, {"max_length:x": "4"})
    assert rules.violation({"x": np.zeros(4, np.int64)}) is None
    assert "length 5 exceeds" in rules.violation({"x": np.zeros(5, np.int64)})


@pytest.mark.parametrize(
    "parameter",
    [
        {"valid_range:input_ids": "0"},
        {"max_length:input_ids": "many"},
        {"shared_axis:sequence": "input_ids,attention_mask"},
    ],
)
def test_a_malformed_rule_fails_the_load_naming_the_parameter(parameter):
    key, value = next(iter(parameter.items()))
    with pytest.raises(ValueError, match=f"config parameter {key} = '{value}'"):
        InputRules(CONFIG, parameter)

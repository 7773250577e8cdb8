"""Inputs bind to forward's parameters by name, outputs by key or by checked position."""

import pytest
import torch

from conversion.binding import InputBinding, NamedModel, bind_inputs, bind_outputs
from conversion.spec import OutputSpec, SpecError
from tests.conversion import zoo


class Positional(torch.nn.Module):
    def forward(self, a, b, /, c=None):
        return a - b


class OneTensor(torch.nn.Module):
    def forward(self, pixels):
        return pixels * 2


class TwoParameters(torch.nn.Module):
    def forward(self, a, b):
        return a + b


def test_inputs_listed_in_another_order_are_passed_by_name():
    binding = bind_inputs(zoo.swapped_inputs(), ["attention_mask", "input_ids"])
    assert binding == InputBinding()
    model = zoo.swapped_inputs()
    feed = {
        "attention_mask": torch.ones(2, 5, dtype=torch.int64),
        "input_ids": torch.ones(2, 5, dtype=torch.int64) * 7,
    }
    expected = model(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"])
    assert torch.equal(binding.call(model, feed), expected)


def test_a_keyword_only_parameter_is_bound_by_name():
    assert bind_inputs(zoo.keyword_only(), ["scale", "x"]) == InputBinding()


def test_kwargs_take_every_input_by_name():
    assert bind_inputs(zoo.kwargs(), ["income", "age"]) == InputBinding()


def test_positional_only_parameters_are_passed_by_position_in_their_order():
    binding = bind_inputs(Positional(), ["b", "a"])
    assert binding.positional == ("a", "b")
    assert binding.call(Positional(), {"b": torch.tensor(1.0), "a": torch.tensor(3.0)}) == 2.0


def test_a_forward_taking_one_dict_gets_the_inputs_as_its_keys():
    assert bind_inputs(zoo.dict_input(), ["x", "bias"]) == InputBinding(dict_parameter="batch")


def test_several_inputs_for_a_lone_unannotated_parameter_go_as_one_dict():
    class Lone(torch.nn.Module):
        def forward(self, features):
            return features["a"]

    assert bind_inputs(Lone(), ["a", "b"]) == InputBinding(dict_parameter="features")


def test_one_input_named_otherwise_than_the_lone_parameter_is_passed_by_position():
    assert bind_inputs(OneTensor(), ["image"]) == InputBinding(positional=("image",))


def test_an_input_matching_no_parameter_is_refused_naming_both_sides():
    with pytest.raises(
        SpecError, match=r"input \['c'\] matches no parameter of TwoParameters.forward\(a, b\)"
    ):
        bind_inputs(TwoParameters(), ["a", "c"])


def test_a_required_parameter_without_an_input_is_refused():
    with pytest.raises(
        SpecError, match=r"TwoParameters.forward\(a, b\) needs \['b'\], which no input provides"
    ):
        bind_inputs(TwoParameters(), ["a"])


def test_a_dict_output_binds_by_key_and_declared_order_does_not_matter():
    result = zoo.dict_output()(torch.zeros(4, 4))
    declared = (OutputSpec("logits"), OutputSpec("embedding", "embedding"))
    binding = bind_outputs(result, declared, "classification", 4)
    assert binding.selectors == ("logits", "embedding")
    assert [t.shape[1] for t in binding.select(result)] == [3, 8]


def test_dict_outputs_are_inferred_from_their_keys():
    binding = bind_outputs(
        {"b": torch.zeros(4, 2), "a": torch.zeros(4), "note": "text"}, (), "embedding", 4
    )
    assert [(o.name, o.task) for o in binding.outputs] == [("b", "embedding"), ("a", "embedding")]


def test_a_model_output_binds_by_key():
    binding = bind_outputs(zoo.hf_output()(torch.zeros(4, 4)), (), "classification", 4)
    assert [o.name for o in binding.outputs] == ["logits"]


def test_a_declared_key_missing_from_the_dict_is_refused_with_the_keys_there_are():
    with pytest.raises(
        SpecError,
        match=r"output \['scores'\] is not among the tensors forward returns \(logits: \[4, 3\]\)",
    ):
        bind_outputs({"logits": torch.zeros(4, 3)}, (OutputSpec("scores"),), "classification", 4)


def test_a_tuple_binds_by_position_when_every_declared_shape_fits():
    declared = (OutputSpec.parse("score:regression:batch,1"), OutputSpec.parse("logits:batch,3"))
    binding = bind_outputs(zoo.tuple_output()(torch.zeros(4, 4)), declared, "classification", 4)
    assert binding.selectors == (0, 1)


def test_a_tuple_declared_in_the_wrong_order_is_refused_naming_both_sides():
    declared = (OutputSpec.parse("logits:batch,3"), OutputSpec.parse("score:batch,1"))
    with pytest.raises(SpecError) as caught:
        bind_outputs(zoo.tuple_output()(torch.zeros(4, 4)), declared, "classification", 4)
    assert str(caught.value) == (
        "output 'logits' (tuple position 0): declared [batch,3], got [4, 1]; "
        "output 'score' (tuple position 1): declared [batch,1], got [4, 3]"
    )


def test_tuple_outputs_without_dims_are_refused_with_the_dims_to_give():
    with pytest.raises(
        SpecError, match=r"give each output its dims \(e.g. --output logits:batch,1\)"
    ):
        bind_outputs(
            zoo.tuple_output()(torch.zeros(4, 4)),
            (OutputSpec("logits"), OutputSpec("score")),
            "classification",
            4,
        )


def test_tuple_outputs_are_inferred_as_output_0_and_so_on():
    binding = bind_outputs((torch.zeros(4, 1), torch.zeros(4, 3)), (), "classification", 4)
    assert [o.name for o in binding.outputs] == ["output_0", "output_1"]


def test_a_tuple_of_another_length_than_declared_is_refused():
    with pytest.raises(SpecError, match="forward returns 2 tensors"):
        bind_outputs(
            (torch.zeros(4, 1), torch.zeros(4, 3)), (OutputSpec("a"),), "classification", 4
        )


def test_a_tuple_holding_something_other_than_tensors_is_refused():
    with pytest.raises(SpecError, match=r"forward returns a tuple of \['Tensor', 'str'\]"):
        bind_outputs((torch.zeros(4, 1), "x"), (), "classification", 4)


def test_a_lone_tensor_is_the_one_output_named_as_declared_or_output():
    assert bind_outputs(torch.zeros(4, 3), (), "classification", 4).outputs[0].name == "output"
    with pytest.raises(SpecError, match=r"forward returns one tensor \[4, 3\], and 2 outputs"):
        bind_outputs(torch.zeros(4, 3), (OutputSpec("a"), OutputSpec("b")), "classification", 4)


def test_an_output_without_the_batch_axis_first_is_refused():
    with pytest.raises(
        SpecError, match=r"its first axis is not the batch axis \(4 rows in, shape \[3\]\)"
    ):
        bind_outputs(torch.zeros(3), (), "classification", 4)


def test_something_that_is_not_a_tensor_tuple_or_dict_is_refused():
    with pytest.raises(SpecError, match="forward returns str"):
        bind_outputs("x", (), "classification", 4)


def test_the_named_model_runs_in_spec_order_and_answers_by_name():
    model = zoo.dict_output()
    declared = (OutputSpec("logits"), OutputSpec("embedding", "embedding"))
    outputs = bind_outputs(model(torch.zeros(2, 4)), declared, "classification", 2)
    named = NamedModel(model, ["x"], bind_inputs(model, ["x"]), outputs)
    answer = named.run({"x": torch.ones(2, 4).numpy()})
    assert list(answer) == ["logits", "embedding"] and answer["logits"].shape == (2, 3)
    assert not named.training

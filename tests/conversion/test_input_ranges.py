"""Index inputs and their valid ranges, found in ONNX graphs built here and in the MiniLM export."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conversion.input_ranges import axis_limits, index_ranges, max_lengths


def table(name: str, rows: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros((rows, 4), np.float32), name)


def save_graph(path, nodes, inputs, initializers, output="out"):
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def ids(name: str = "ids", elem_type: int = TensorProto.INT64) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, ["batch", "sequence"])


def test_an_input_that_indexes_an_embedding_table_gets_zero_to_rows_minus_one(tmp_path):
    path = save_graph(
        tmp_path / "m.onnx",
        [helper.make_node("Gather", ["words", "ids"], ["out"])],
        [ids()],
        [table("words", 100)],
    )
    assert index_ranges(path) == {"ids": (0, 99)}


def test_casts_and_reshapes_between_the_input_and_the_gather_are_followed(tmp_path):
    nodes = [
        helper.make_node("Cast", ["ids"], ["cast"], to=TensorProto.INT32),
        helper.make_node("Unsqueeze", ["cast", "axes"], ["unsqueezed"]),
        helper.make_node("Flatten", ["unsqueezed"], ["flat"], axis=1),
        helper.make_node("Gather", ["words", "flat"], ["out"], axis=0),
    ]
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    path = save_graph(tmp_path / "m.onnx", nodes, [ids()], [table("words", 30522), axes])
    assert index_ranges(path) == {"ids": (0, 30521)}


def test_an_input_that_indexes_several_tables_gets_the_smallest(tmp_path):
    nodes = [
        helper.make_node("Gather", ["big", "ids"], ["a"]),
        helper.make_node("Gather", ["small", "ids"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["out"]),
    ]
    path = save_graph(tmp_path / "m.onnx", nodes, [ids()], [table("big", 512), table("small", 2)])
    assert index_ranges(path) == {"ids": (0, 1)}


def test_inputs_that_index_no_table_get_no_range(tmp_path):
    nodes = [
        # the input is the data of the Gather, not its indices
        helper.make_node("Gather", ["mask", "positions"], ["a"]),
        # axis 1 selects columns, not rows of an embedding table
        helper.make_node("Gather", ["words", "columns"], ["b"], axis=1),
        # the data is computed, not an initializer
        helper.make_node("Relu", ["words"], ["computed"]),
        helper.make_node("Gather", ["computed", "other"], ["c"]),
        helper.make_node("Concat", ["a", "b", "c"], ["out"], axis=0),
    ]
    inputs = [ids("mask"), ids("columns"), ids("other")]
    positions = numpy_helper.from_array(np.array([0], np.int64), "positions")
    path = save_graph(tmp_path / "m.onnx", nodes, inputs, [table("words", 10), positions])
    assert index_ranges(path) == {}


def test_a_float_input_is_never_an_index(tmp_path):
    floats = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    nodes = [
        helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64),
        helper.make_node("Gather", ["words", "i"], ["out"]),
    ]
    assert index_ranges(save_graph(tmp_path / "m.onnx", nodes, [floats], [table("words", 8)])) == {}


def test_the_minilm_export_takes_token_ids_of_its_30522_word_vocabulary(model_repository):
    assert index_ranges(model_repository / "minilm" / "portable.onnx") == {"input_ids": (0, 30521)}


def sliced_buffer(path, buffer_length: int, ends_from_shape: bool = True, start: int = 0):
    """out = positions[:, start:ids.shape[1]] (positions: a constant [1, buffer_length]), as
    BERT exports `self.position_ids[:, :seq_length]`; or sliced to a constant end."""
    positions = numpy_helper.from_array(np.arange(buffer_length)[None, :], "positions")
    ints = {
        n: numpy_helper.from_array(np.array(v, np.int64), n)
        for n, v in {"one": 1, "axes": [1], "starts": [start], "fixed": [8]}.items()
    }
    nodes = [
        helper.make_node("Shape", ["ids"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["length"], axis=0),
        helper.make_node("Unsqueeze", ["length", "axes"], ["ends"]),
        helper.make_node(
            "Slice",
            ["positions", "starts", "ends" if ends_from_shape else "fixed", "axes"],
            ["out"],
        ),
    ]
    mask = helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        nodes,
        "g",
        [ids(), mask],
        [helper.make_tensor_value_info("out", TensorProto.INT64, None)],
        initializer=[positions, *ints.values()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


SEQUENCE = {"ids": {0: "batch", 1: "sequence"}, "mask": {0: "batch", 1: "sequence"}}


def test_an_axis_that_slices_a_constant_buffer_is_at_most_the_buffers_length(tmp_path):
    path = sliced_buffer(tmp_path / "m.onnx", 64)
    assert axis_limits(path) == {"ids": {1: 64}}
    assert max_lengths(path, SEQUENCE) == {"ids": 64, "mask": 64}  # mask shares the axis name


def test_a_slice_that_starts_later_leaves_fewer_entries(tmp_path):
    assert axis_limits(sliced_buffer(tmp_path / "m.onnx", 64, start=2)) == {"ids": {1: 62}}


def test_a_buffer_sliced_to_a_constant_end_limits_nothing(tmp_path):
    assert axis_limits(sliced_buffer(tmp_path / "m.onnx", 64, ends_from_shape=False)) == {}


def test_an_input_with_two_variable_axes_gets_no_single_length(tmp_path):
    path = sliced_buffer(tmp_path / "m.onnx", 64)
    assert max_lengths(path, {"ids": {0: "batch", 1: "sequence", 2: "width"}}) == {}


def test_the_minilm_export_takes_at_most_512_tokens_and_fails_beyond(model_repository):
    import onnxruntime as ort

    path = model_repository / "minilm" / "portable.onnx"
    names = {"input_ids": SEQUENCE["ids"], "attention_mask": SEQUENCE["mask"]}
    assert max_lengths(path, names) == {"input_ids": 512, "attention_mask": 512}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {n: np.ones((1, 512), np.int64) for n in names}
    session.run(None, feed)
    longer = {n: np.ones((1, 513), np.int64) for n in names}
    with pytest.raises(Exception, match="invalid expand shape"):
        session.run(None, longer)

import numpy as np
import pytest

from conversion.spec import Dataset, InputSpec, OutputSpec, SpecError, shared_axes


def test_an_input_spec_names_dynamic_axes_and_fixed_sizes():
    spec = InputSpec.parse("image:float32:batch,1,8,8")
    assert spec.dims == ("batch", 1, 8, 8)
    assert spec.dynamic_axes == {0: "batch"}
    assert spec.triton_dims == (1, 8, 8)
    text = InputSpec.parse("input_ids:int64:batch,sequence")
    assert text.dynamic_axes == {0: "batch", 1: "sequence"}
    assert text.triton_dims == (-1,)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("image:float32", "expected name:dtype:dims"),
        ("image:float64:batch,1,8,8", "dtype 'float64'"),
        ("image:float32:1,1,8,8", "first axis must be the dynamic batch axis"),
        ("image:float32:batch,-1,8", "neither a positive size nor a name"),
    ],
)
def test_a_malformed_input_spec_is_rejected_with_the_reason(text, complaint):
    with pytest.raises(SpecError, match=complaint):
        InputSpec.parse(text)


def test_data_that_does_not_fit_the_spec_is_named_in_the_error():
    spec = InputSpec.parse("image:float32:batch,1,8,8")
    with pytest.raises(SpecError, match="axis 2 is 9, the spec says 8"):
        spec.check(np.zeros((2, 1, 9, 8), np.float32), "validation data")
    with pytest.raises(SpecError, match="is float64"):
        spec.check(np.zeros((2, 1, 8, 8)), "validation data")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_data_with_a_nan_or_inf_is_refused_with_the_count(bad):
    spec = InputSpec.parse("image:float32:batch,1,8,8")
    data = np.zeros((2, 1, 8, 8), np.float32)
    data[1, 0, 3, :2] = bad
    with pytest.raises(SpecError, match="input 'image' has 2 non-finite values"):
        spec.check(data, "calibration data")


def test_calibration_batches_come_out_equal_shaped():
    data = Dataset.from_arrays({"x": np.zeros((70, 3), np.float32)}, batch_size=32)
    batches = data.equal_shaped(16)
    assert len(batches) == 4  # 32 -> 2, 32 -> 2, the 6 left over are dropped
    assert {b["x"].shape for b in batches} == {(16, 3)}


def test_an_npz_dataset_loads_every_input_array_and_the_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, image=np.zeros((5, 1, 8, 8), np.float32), labels=np.arange(5))
    data = Dataset.load_npz(path, batch_size=2)
    assert len(data) == 5 and len(data.batches) == 3 and data.input_names == ["image"]
    assert list(data.labels) == [0, 1, 2, 3, 4]


def test_an_npz_dataset_whose_arrays_differ_in_rows_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, a=np.zeros((5, 2), np.float32), b=np.zeros((4, 2), np.float32))
    with pytest.raises(SpecError, match=r"the arrays differ in rows: \{'a': 5, 'b': 4\}"):
        Dataset.load_npz(path)


def test_a_missing_or_unreadable_dataset_is_named(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        Dataset.load_npz(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(SpecError, match=r"not a readable \.npz file"):
        Dataset.load_npz(tmp_path / "bad.npz")


def test_an_input_spec_is_inferred_with_a_dynamic_batch_and_fixed_other_axes():
    spec = InputSpec.infer("image", np.zeros((4, 3, 32, 32), np.float32))
    assert str(spec) == "image:float32:batch,3,32,32"
    with pytest.raises(SpecError, match="cannot infer a spec from a float64 array"):
        InputSpec.infer("x", np.zeros((4, 2)))


@pytest.mark.parametrize(
    ("text", "name", "task", "dims"),
    [
        ("logits", "logits", "classification", None),
        ("score:regression", "score", "regression", None),
        ("logits:batch,3", "logits", "classification", ("batch", 3)),
        ("embedding:embedding:batch,384", "embedding", "embedding", ("batch", 384)),
    ],
)
def test_an_output_spec_names_its_task_and_optional_dims(text, name, task, dims):
    assert OutputSpec.parse(text) == OutputSpec(name, task, dims)


def test_a_malformed_output_spec_is_refused_with_the_reason():
    with pytest.raises(SpecError, match="expected name\\[:task\\]\\[:dims\\]"):
        OutputSpec.parse(":batch,3")
    with pytest.raises(SpecError, match="the first axis must be the dynamic batch axis"):
        OutputSpec.parse("logits:3")


def test_an_output_spec_says_why_a_shape_does_not_fit():
    spec = OutputSpec.parse("logits:batch,3")
    assert spec.mismatch((4, 3), 4) is None
    assert spec.mismatch((4, 1), 4) == "declared [batch,3], got [4, 1]"
    assert spec.mismatch((3,), 4).startswith("its first axis is not the batch axis")
    assert OutputSpec("y").mismatch((4, 7, 2), 4) is None


def test_inputs_naming_one_dynamic_axis_share_it_with_their_indices():
    inputs = [
        InputSpec.parse("input_ids:int64:batch,sequence"),
        InputSpec.parse("attention_mask:int64:batch,sequence"),
        InputSpec.parse("pixels:float32:batch,3,height,width"),
        InputSpec.parse("pixel_mask:int64:batch,height,width"),
    ]
    assert shared_axes(inputs) == {
        "sequence": (("input_ids", 1), ("attention_mask", 1)),
        "height": (("pixels", 2), ("pixel_mask", 1)),
        "width": (("pixels", 3), ("pixel_mask", 2)),
    }


def test_the_batch_axis_and_an_axis_named_once_are_no_shared_axis():
    inputs = [InputSpec.parse("ids:int64:batch,sequence"), InputSpec.parse("x:float32:batch,4")]
    assert shared_axes(inputs) == {}


def test_one_name_twice_in_one_input_ties_its_own_axes():
    assert shared_axes([InputSpec.parse("square:float32:batch,n,n")]) == {
        "n": (("square", 1), ("square", 2))
    }

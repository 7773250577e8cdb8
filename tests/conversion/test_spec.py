import numpy as np
import pytest

from conversion.spec import Dataset, InputSpec, SpecError


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


def test_calibration_batches_come_out_equal_shaped():
    data = Dataset.from_arrays({"x": np.zeros((70, 3), np.float32)}, batch_size=32)
    batches = data.equal_shaped(16)
    assert len(batches) == 4  # 32 -> 2, 32 -> 2, the 6 left over are dropped
    assert {b["x"].shape for b in batches} == {(16, 3)}


def test_an_npz_dataset_loads_inputs_and_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, image=np.zeros((5, 1, 8, 8), np.float32), labels=np.arange(5))
    data = Dataset.load_npz(path, [InputSpec.parse("image:float32:batch,1,8,8")], batch_size=2)
    assert len(data) == 5 and len(data.batches) == 3
    assert list(data.labels) == [0, 1, 2, 3, 4]
    with pytest.raises(SpecError, match="no array named 'pixels'"):
        Dataset.load_npz(path, [InputSpec.parse("pixels:float32:batch,1,8,8")])

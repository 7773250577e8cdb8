import numpy as np
import onnx
import pytest
import torch

from conversion.binding import NamedModel, bind_inputs, bind_outputs
from conversion.export import (
    ExportError,
    check_against_torch,
    deviation,
    export_onnx,
    prove_dynamic_axes,
    resized,
)
from conversion.spec import InputSpec, SpecError
from tests.conversion import zoo


def _dims(path, name):
    graph = onnx.load(str(path)).graph
    value = next(v for v in [*graph.input, *graph.output] if v.name == name)
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _named(model, sample):
    names = list(sample)
    inputs = bind_inputs(model, names)
    result = inputs.call(model, {n: torch.from_numpy(a) for n, a in sample.items()})
    outputs = bind_outputs(result, (), "classification", len(sample[names[0]]))
    return NamedModel(model, names, inputs, outputs)


def _export(model, sample, specs, path):
    named = _named(model, sample)
    axes = {s.name: s.dynamic_axes for s in specs}
    return named, export_onnx(named, sample, path, axes)


def test_digits_exports_with_a_dynamic_batch_axis_and_matches_pytorch(digits_converted):
    exported = digits_converted.workdir / "exported.onnx"
    onnx.checker.check_model(str(exported), full_check=True)
    assert _dims(exported, "image") == ["batch", 1, 8, 8]
    assert _dims(exported, "logits") == ["batch", 10]
    assert digits_converted.report.export_max_deviation < 1e-4
    assert digits_converted.report.exported.axes_proven == {"batch": 3}


def test_minilm_exports_with_dynamic_batch_and_sequence_axes_proven_at_a_second_size(
    minilm_converted,
):
    exported = minilm_converted.workdir / "exported.onnx"
    assert _dims(exported, "input_ids") == ["batch", "sequence"]
    assert _dims(exported, "attention_mask") == ["batch", "sequence"]
    assert _dims(exported, "embedding")[0] == "batch"
    assert minilm_converted.report.export_max_deviation < 1e-4
    assert minilm_converted.report.exported.axes_proven == {"batch": 3, "sequence": 15}


def test_an_onnx_model_that_differs_from_pytorch_is_caught_naming_the_output(
    tmp_path, digits_conversion
):
    model = digits_conversion.source
    sample = {"image": digits_conversion.validation.batches[0]["image"][:4]}
    specs = [InputSpec("image", "float32", ("batch", 1, 8, 8))]
    named, _ = _export(model, sample, specs, tmp_path / "m.onnx")

    class Shifted(torch.nn.Module):
        def forward(self, image):
            return model(image) + 0.5

    shifted = NamedModel(Shifted(), ["image"], named.inputs, named.outputs)
    with pytest.raises(ExportError, match=r"output 'output' differs from PyTorch by up to 0\.5"):
        check_against_torch(shifted, tmp_path / "m.onnx", sample)
    assert check_against_torch(named, tmp_path / "m.onnx", sample) < 1e-4


def test_a_model_that_cannot_be_exported_raises_an_export_error(tmp_path):
    class Unexportable(torch.nn.Module):
        def forward(self, x):
            return x.median(dim=1).values  # aten::median has no ONNX mapping

    with pytest.raises(
        ExportError, match="'aten::median' to ONNX opset version 17 is not supported"
    ):
        _export(Unexportable(), {"x": np.zeros((2, 3), np.float32)}, [], tmp_path / "m.onnx")


def test_the_tracers_warnings_are_returned_with_file_and_line(tmp_path):
    sample = {"input_ids": np.ones((4, 12), np.int64)}
    specs = [InputSpec("input_ids", "int64", ("batch", "sequence"))]
    _, warned = _export(zoo.frozen_sequence(), sample, specs, tmp_path / "m.onnx")
    assert len(warned) == 1 and warned[0].startswith("zoo.py:")
    assert "Using len to get tensor shape might cause the trace to be incorrect" in warned[0]


def test_a_frozen_sequence_axis_fails_naming_the_axis_the_cause_and_the_tracer_warning(tmp_path):
    sample = {"input_ids": np.arange(48).reshape(4, 12) % zoo.VOCAB}
    specs = [InputSpec("input_ids", "int64", ("batch", "sequence"))]
    named, warned = _export(zoo.frozen_sequence(), sample, specs, tmp_path / "m.onnx")
    with pytest.raises(ExportError) as caught:
        prove_dynamic_axes(named, tmp_path / "m.onnx", specs, sample, (1e-4, 1e-3), warned)
    message = str(caught.value)
    assert message.startswith(
        "the exported graph froze axis 'sequence' (input 'input_ids' axis 1): at sequence=11 "
        "output 'output' differs from PyTorch"
    )
    assert "likely cause: forward turns a tensor size into a Python number (len(x)" in message
    assert "Tracer warnings: zoo.py:" in message and "Using len to get tensor shape" in message


def test_a_frozen_batch_axis_fails_at_export_naming_the_batch_axis(tmp_path):
    sample = {"x": np.ones((4, 2, 4), np.float32)}
    specs = [InputSpec("x", "float32", ("batch", 2, 4))]
    named, warned = _export(zoo.frozen_batch(), sample, specs, tmp_path / "m.onnx")
    with pytest.raises(
        ExportError,
        match=r"froze axis 'batch' \(input 'x' axis 0\): at batch=3 ONNX Runtime fails: ",
    ):
        prove_dynamic_axes(named, tmp_path / "m.onnx", specs, sample, (1e-4, 1e-3), warned)


def test_every_dynamic_axis_that_holds_is_reported_with_the_size_it_ran_at(tmp_path):
    sample = zoo.SERVED[0].data(4, seed=0)
    specs = [InputSpec(n, "int64", ("batch", "sequence")) for n in sample]
    named, warned = _export(zoo.swapped_inputs(), sample, specs, tmp_path / "m.onnx")
    assert warned == []
    assert prove_dynamic_axes(named, tmp_path / "m.onnx", specs, sample, (1e-4, 1e-3), warned) == {
        "batch": 3,
        "sequence": 11,
    }


def test_an_axis_declared_dynamic_that_pytorch_cannot_run_at_another_size_is_refused(tmp_path):
    class FixedWidth(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(6, 2)

        def forward(self, x):
            return self.linear(x)

    sample = {"x": np.ones((4, 6), np.float32)}
    specs = [InputSpec("x", "float32", ("batch", "width"))]
    named, warned = _export(FixedWidth(), sample, specs, tmp_path / "m.onnx")
    with pytest.raises(
        SpecError, match="axis 'width' is declared dynamic, but PyTorch itself fails at width=5"
    ):
        prove_dynamic_axes(named, tmp_path / "m.onnx", specs, sample, (1e-4, 1e-3), warned)


def test_an_axis_of_size_one_is_tried_at_two():
    feed, size = resized({"x": np.ones((1, 3))}, [InputSpec("x", "float32", ("batch", 3))], "batch")
    assert size == 2 and feed["x"].shape == (2, 3)


def test_outputs_of_another_shape_than_pytorchs_are_a_deviation():
    worst, why = deviation({"y": np.zeros((2, 3))}, {"y": np.zeros(3)}, 1e-4, 1e-3)
    assert worst == float("inf") and why == "output 'y' is [3], PyTorch's [2, 3]"

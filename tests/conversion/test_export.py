import onnx
import pytest
import torch

from conversion.export import ExportError, check_against_torch, export_onnx


def _dims(path, name):
    graph = onnx.load(str(path)).graph
    value = next(v for v in [*graph.input, *graph.output] if v.name == name)
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_digits_exports_with_a_dynamic_batch_axis_and_matches_pytorch(digits_converted):
    exported = digits_converted.workdir / "exported.onnx"
    onnx.checker.check_model(str(exported), full_check=True)
    assert _dims(exported, "image") == ["batch", 1, 8, 8]
    assert _dims(exported, "logits") == ["batch", 10]
    assert digits_converted.report.export_max_deviation < 1e-4


def test_minilm_exports_with_dynamic_batch_and_sequence_axes(minilm_converted):
    exported = minilm_converted.workdir / "exported.onnx"
    assert _dims(exported, "input_ids") == ["batch", "sequence"]
    assert _dims(exported, "attention_mask") == ["batch", "sequence"]
    assert _dims(exported, "embedding")[0] == "batch"
    assert minilm_converted.report.export_max_deviation < 1e-4


def test_an_onnx_model_that_differs_from_pytorch_is_caught(tmp_path, digits_job):
    model = digits_job.model
    sample = {"image": torch.from_numpy(digits_job.validation.batches[0]["image"][:4])}
    path = export_onnx(model, sample, ["logits"], tmp_path / "m.onnx", {"image": {0: "batch"}})

    class Shifted(torch.nn.Module):
        def forward(self, image):
            return model(image) + 0.5

    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_against_torch(Shifted(), path, sample)
    assert check_against_torch(model, path, sample) < 1e-4


def test_a_model_that_cannot_be_exported_raises_an_export_error(tmp_path):
    class Unexportable(torch.nn.Module):
        def forward(self, x):
            return x.median(dim=1).values  # aten::median has no ONNX mapping

    with pytest.raises(
        ExportError, match="'aten::median' to ONNX opset version 17 is not supported"
    ):
        export_onnx(
            Unexportable(),
            {"x": torch.zeros(2, 3)},
            ["y"],
            tmp_path / "m.onnx",
            {"x": {0: "batch"}},
        )

import numpy as np

from conversion.optimize import op_counts


def test_digits_is_optimized_offline_at_extended_level_and_the_fusions_are_reported(
    digits_converted,
):
    report = digits_converted.report.optimization
    assert report.fusions == {"FusedConv": 2, "FusedGemm": 1}
    assert report.removed.get("Conv") == 2
    ops = op_counts(digits_converted.workdir / "fp32.onnx")
    assert "FusedConv" in ops and "Conv" not in ops
    # EXTENDED, not ENABLE_ALL: no hardware-specific NCHWc layout nodes in the saved model
    assert not any(op.startswith("ReorderInput") or op == "ReorderOutput" for op in ops)


def test_minilm_attention_is_fused_by_the_transformers_optimizer(minilm_converted):
    fusions = minilm_converted.report.optimization.fusions
    assert fusions["Attention"] == 6  # one per layer
    assert fusions["SkipLayerNormalization"] == 12
    assert fusions["EmbedLayerNormalization"] == 1
    assert op_counts(minilm_converted.workdir / "fp32.onnx")["Attention"] == 6


def test_the_manifest_lists_the_fusions(minilm_converted):
    import json

    manifest = json.loads((minilm_converted.repository / "minilm" / "manifest.json").read_text())
    assert manifest["optimization"]["fusions"]["Attention"] == 6
    assert manifest["optimization"]["nodes_after"] < manifest["optimization"]["nodes_before"]


def test_a_model_with_external_data_is_optimized_with_its_weights_kept_outside(tmp_path):
    from conversion.external_data import copy_onnx, external_data_files
    from conversion.optimize import ort_offline
    from tests.conversion.test_external_data import answers, linear_with_external_weights

    large = copy_onnx(linear_with_external_weights(tmp_path / "src"), tmp_path / "big.onnx", 1024)
    optimized = ort_offline(large, tmp_path / "fp32.onnx")
    assert external_data_files(optimized) == ["fp32.onnx.data"]
    assert np.allclose(answers(optimized), answers(large))

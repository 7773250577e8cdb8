import json

import numpy as np
import onnx

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


def test_minilm_static_int8_quantizes_only_the_layers_with_weights_of_the_unfused_graph(
    minilm_converted,
):
    # from the transformer-fused graph its QDQ MatMuls stayed unfused: 1.3-2x FP32's latency
    model = onnx.load(str(minilm_converted.workdir / "int8_static.onnx"))
    ops = op_counts(minilm_converted.workdir / "int8_static.onnx")
    assert "Attention" not in ops and "SkipLayerNormalization" not in ops
    weights = {i.name for i in model.graph.initializer}
    dequantized = {
        n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
    }
    quantized_weights = {out for out, source in dequantized.items() if source in weights}
    with_weights = [n for n in model.graph.node if set(n.input) & quantized_weights]
    assert with_weights and {n.op_type for n in with_weights} == {"MatMul"}
    manifest = json.loads((minilm_converted.repository / "minilm" / "manifest.json").read_text())
    assert manifest["calibration"]["static_source"] == "unfused export (ORT BASIC)"
    assert manifest["calibration"]["static_op_types"] == ["MatMul", "Gemm"]
    # attention's scores and context MatMuls take no quantized input
    for node in model.graph.node:
        if node.op_type == "MatMul" and set(node.input) & set(dequantized):
            assert set(node.input) & quantized_weights, node.name

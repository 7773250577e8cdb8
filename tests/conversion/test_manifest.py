import json


def test_the_manifest_records_variants_sizes_accuracy_verdicts_and_latency(digits_converted):
    repository = digits_converted.repository
    manifest = json.loads((repository / "digits" / "manifest.json").read_text())
    assert manifest["validation_samples"] == 270
    assert manifest["gate"]["max_accuracy_drop"] == 0.005
    assert set(manifest["variants"]) == {
        "fp32",
        "fp16",
        "int8_dynamic",
        "int8_static",
        "ov_int8",
        "ov_bf16",
    }
    for variant in manifest["variants"].values():
        assert variant["size_bytes"] > 0
        assert set(variant["latency_ms"]) == {"1", "8", "32"}
        assert variant["passed"] in (True, False)
        assert {"accuracy", "max_abs_deviation"} <= set(variant["metrics"]["logits"])
    int8 = manifest["variants"][manifest["int8_selected"]]
    assert int8["served_as"] == "digits_int8"
    assert int8["size_bytes"] == (repository / "digits_int8/1/model.onnx").stat().st_size
    assert manifest["tensorrt"]["status"].startswith("TensorRT is not installed")
    assert manifest["variants"]["fp32"]["judged_against"] == "pytorch"
    for variant in manifest["variants"].values():  # what is not served says why
        if not variant["passed"]:
            assert variant["reasons"] and variant["served_as"] is None
        elif variant["served_as"] is None:
            assert variant["not_served"].startswith(("not faster than", "slower than", "int8_"))
    assert manifest["export"]["dynamic_axes_proven"] == {"batch": 3}
    assert manifest["calibration"]["static_source"] == "optimized base"
    assert manifest["calibration"]["static_op_types"] == "all"
    assert manifest["outputs"] == [
        {"name": "logits", "task": "classification", "dims": ["batch", 10]}
    ]

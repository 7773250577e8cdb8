import json
from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conversion import gate, pipeline
from conversion.pipeline import convert
from conversion.settings import GateSettings
from conversion.spec import OutputSpec, SpecError
from tests.conversion.conftest import quiet_console, tuned

LOGITS = (OutputSpec("logits", "classification"),)


def test_classification_metrics_measure_the_accuracy_drop_against_the_reference():
    labels = np.array([0, 1, 1, 0])
    reference = {"logits": np.array([[2.0, 0], [0, 2], [0, 2], [2, 0]])}
    candidate = {"logits": np.array([[2.0, 0], [0, 2], [2, 0], [2, 0]])}  # one more mistake
    values = gate.metrics(LOGITS, reference, candidate, labels)["logits"]
    assert values["reference_accuracy"] == 1.0 and values["accuracy"] == 0.75
    assert values["accuracy_drop"] == 0.25 and values["max_abs_deviation"] == 2.0
    verdict = gate.judge("int8_static", LOGITS, {"logits": values}, GateSettings())
    assert not verdict.passed
    assert verdict.reasons == ["logits: accuracy drop 25.00 points > 1.00"]


def test_without_labels_classification_is_judged_on_top1_agreement():
    reference = {"logits": np.array([[2.0, 0], [0, 2], [0, 2], [2, 0]])}
    candidate = {"logits": np.array([[2.0, 0], [0, 2], [2, 0], [2, 0]])}
    values = gate.metrics(LOGITS, reference, candidate, None)
    assert values["logits"]["top1_agreement"] == 0.75 and "accuracy" not in values["logits"]
    verdict = gate.judge("fp16", LOGITS, values, GateSettings())
    assert verdict.reasons == ["logits: top-1 disagreement 25.00 points > 1.00"]


def test_embedding_metrics_are_cosine_and_nearest_neighbour_agreement():
    outputs = (OutputSpec("embedding", "embedding"),)
    rng = np.random.default_rng(0)
    reference = {"embedding": rng.normal(size=(20, 8))}
    close = {"embedding": reference["embedding"] + rng.normal(scale=1e-3, size=(20, 8))}
    values = gate.metrics(outputs, reference, close, None)
    assert values["embedding"]["mean_cosine"] > 0.999
    assert values["embedding"]["ranking_agreement"] == 1.0
    assert gate.judge("fp16", outputs, values, GateSettings()).passed
    shuffled = gate.metrics(outputs, reference, {"embedding": rng.normal(size=(20, 8))}, None)
    verdict = gate.judge("int8_static", outputs, shuffled, GateSettings())
    assert [r.split(" ")[1:3] for r in verdict.reasons] == [
        ["mean", "cosine"],
        ["ranking", "agreement"],
    ]


def test_a_regression_output_is_judged_by_its_deviation_bound():
    outputs = (OutputSpec("score", "regression"),)
    values = gate.metrics(outputs, {"score": np.zeros(4)}, {"score": np.full(4, 0.3)}, None)
    assert values["score"]["mean_abs_deviation"] == pytest.approx(0.3)
    assert not gate.judge("fp16", outputs, values, GateSettings(max_abs_deviation=0.1)).passed
    assert gate.judge("fp16", outputs, values, GateSettings(max_abs_deviation=0.5)).passed


def test_an_integer_output_is_judged_by_the_share_of_equal_rows():
    outputs = (OutputSpec("label", "classification"),)
    reference = {"label": np.array([[1], [2], [3], [4]])}
    values = gate.metrics(outputs, reference, {"label": np.array([[1], [2], [3], [0]])}, None)
    assert values["label"]["exact_agreement"] == 0.75
    verdict = gate.judge("int8_dynamic", outputs, values, GateSettings())
    assert verdict.reasons == ["label: exact agreement 75.00% < 99.00%"]


def test_every_output_is_judged_and_each_reason_names_its_output():
    outputs = (OutputSpec("logits", "classification"), OutputSpec("embedding", "embedding"))
    rng = np.random.default_rng(1)
    reference = {"logits": rng.normal(size=(30, 3)), "embedding": rng.normal(size=(30, 8))}
    candidate = {"logits": reference["logits"], "embedding": -reference["embedding"]}
    verdict = gate.judge(
        "fp16", outputs, gate.metrics(outputs, reference, candidate, None), GateSettings()
    )
    assert set(verdict.metrics) == {"logits", "embedding"}
    assert verdict.reasons and all(r.startswith("embedding: ") for r in verdict.reasons)


def test_a_token_classifier_is_judged_per_token():
    rows = gate.rows("classification", np.zeros((2, 5, 3)))
    assert rows.shape == (10, 3)
    assert gate.rows("regression", np.zeros((2, 5))).shape == (10,)


def test_labels_beyond_an_outputs_classes_name_the_output_as_mislabelled():
    reference = {"score": np.zeros((4, 1)), "logits": np.zeros((4, 3))}
    outputs = (OutputSpec("score", "classification"), OutputSpec("logits", "classification"))
    with pytest.raises(SpecError, match="output 'score' has 1 classes: is it the classification"):
        gate.check_labels(outputs, reference, np.array([0, 1, 2, 1]))
    gate.check_labels(outputs[1:], reference, np.array([0, 1, 2, 1]))


def test_labels_of_another_length_than_the_output_are_refused():
    with pytest.raises(SpecError, match="validation has 3 labels, output 'logits' has 4 rows"):
        gate.check_labels(LOGITS, {"logits": np.zeros((4, 3))}, np.array([0, 1, 2]))


def test_the_headline_gives_each_metric_with_its_absolute_value():
    assert gate.headline({"accuracy": 0.9, "reference_accuracy": 0.95, "accuracy_drop": 0.05}) == (
        "acc 90.00% (-5.00)"
    )
    assert gate.headline({"top1_agreement": 0.5}) == "top-1 agree 50.00%"
    assert gate.headline({"mean_cosine": 0.99, "min_cosine": 0.9}) == "cos 0.9900/0.900"
    assert gate.headline({"mean_abs_deviation": 0.25}) == "mean dev 0.25"


def test_the_distance_to_the_reference_is_zero_for_equal_outputs_and_grows_with_error():
    reference = {"y": np.ones((4, 2))}
    assert gate.distance(reference, reference) == 0
    assert gate.distance({"y": np.full((4, 2), 1.5)}, reference) == pytest.approx(0.25)


def _corrupt(source, target, scale=0.5, seed=0, *_):
    """Add noise to every weight matrix: a variant that loads and runs, with wrong answers."""
    model = onnx.load(str(source))
    rng = np.random.default_rng(seed)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.ndim >= 2:
            noisy = array + rng.normal(scale=scale * (np.std(array) + 1e-6), size=array.shape)
            init.CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), init.name))
    onnx.save(model, str(target))
    return target


def test_a_corrupted_variant_is_rejected_not_served_and_a_stale_copy_is_removed(
    tmp_path, digits_conversion, monkeypatch
):
    repository = tmp_path / "repo"
    stale = repository / "digits_fp16" / "1"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"from an earlier run")
    monkeypatch.setattr(
        pipeline.variants, "to_fp16", lambda base, target, keep: _corrupt(base, target, scale=3.0)
    )
    conversion = tuned(digits_conversion, quantization={"variants": ("fp16",)})

    report = convert(conversion, repository, quiet_console())

    verdict = report.results["fp16"].verdict
    assert not verdict.passed and verdict.reasons[0].startswith("logits: accuracy drop")
    assert not (repository / "digits_fp16").exists()
    assert report.served == ["digits"]
    manifest = json.loads((repository / "digits" / "manifest.json").read_text())
    assert manifest["variants"]["fp16"]["passed"] is False
    assert manifest["variants"]["fp16"]["served_as"] is None
    assert "accuracy drop" in manifest["variants"]["fp16"]["reasons"][0]


def test_a_corrupted_minilm_is_rejected_on_cosine_and_ranking(tmp_path, minilm_converted):
    workdir, validation = minilm_converted.workdir, minilm_converted.conversion.validation
    outputs = minilm_converted.report.exported.outputs
    broken = _corrupt(workdir / "fp32.onnx", tmp_path / "broken.onnx", scale=1.0)
    reference = gate.run(workdir / "fp32.onnx", validation, outputs)
    values = gate.metrics(outputs, reference, gate.run(broken, validation, outputs), None)
    settings = minilm_converted.conversion.settings.gate
    verdict = gate.judge("int8_static", outputs, values, settings)
    assert not verdict.passed
    assert values["embedding"]["mean_cosine"] < 0.99


def test_every_minilm_variant_was_judged_on_the_held_out_sentences(minilm_converted):
    from conversion import minilm

    assert len(minilm_converted.conversion.validation) == 96
    assert not set(minilm.validation_sentences(96)) & set(minilm.calibration_sentences(32))
    for result in minilm_converted.report.results.values():
        assert {"mean_cosine", "min_cosine", "ranking_agreement", "max_abs_deviation"} <= set(
            result.verdict.metrics["embedding"]
        )


def test_the_fp32_model_is_judged_against_pytorch_and_the_variants_against_fp32(digits_converted):
    results = digits_converted.report.results
    assert results["fp32"].verdict.reference == "pytorch"
    assert results["fp32"].verdict.metrics["logits"]["top1_agreement"] == 1.0
    assert {results[k].verdict.reference for k in results if k != "fp32"} == {"fp32"}


def test_static_qdq_with_defaults_on_the_unfused_minilm_is_rejected_and_not_served(
    tmp_path, minilm_conversion
):
    """The measured trap: QDQ over every MatMul of the plain export (attention scores included)
    collapses MiniLM (mean cosine ~0.37). The gate must catch it on the held-out sentences."""
    conversion = tuned(
        minilm_conversion,
        quantization={"variants": ("int8_static",), "per_channel": False, "search_budget_s": 0},
        latency={"batch_sizes": (1,)},
    )
    conversion = replace(conversion, settings=replace(conversion.settings, transformer=None))
    repository = tmp_path / "repo"

    report = convert(conversion, repository, quiet_console())

    verdict = report.results["int8_static"].verdict
    assert not verdict.passed
    assert verdict.metrics["embedding"]["mean_cosine"] < 0.9
    assert any(r.startswith("embedding: mean cosine") for r in verdict.reasons)
    assert any(r.startswith("embedding: ranking agreement") for r in verdict.reasons)
    assert report.int8_selected is None and not (repository / "minilm_int8").exists()
    assert report.served == ["minilm", "minilm_tokenizer", "minilm_text"]

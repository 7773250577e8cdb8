import json

import numpy as np
import onnx
from onnx import numpy_helper

from conversion import gate, pipeline
from conversion.pipeline import convert
from conversion.spec import Gate
from tests.conversion.conftest import quiet_console


def test_classification_metrics_measure_the_accuracy_drop_against_fp32():
    labels = np.array([0, 1, 1, 0])
    reference = [np.array([[2.0, 0], [0, 2], [0, 2], [2, 0]])]
    candidate = [np.array([[2.0, 0], [0, 2], [2, 0], [2, 0]])]  # one more mistake
    values = gate.metrics("classification", reference, candidate, labels)
    assert values["reference_accuracy"] == 1.0 and values["accuracy"] == 0.75
    assert values["accuracy_drop"] == 0.25 and values["max_abs_deviation"] == 2.0
    verdict = gate.judge("int8_static", "classification", values, Gate(max_accuracy_drop=0.01))
    assert not verdict.passed and "accuracy drop 25.00 points > 1.00" in verdict.reasons[0]


def test_embedding_metrics_are_cosine_and_nearest_neighbour_agreement():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(20, 8))
    close = reference + rng.normal(scale=1e-3, size=reference.shape)
    values = gate.metrics("embedding", [reference], [close], None)
    assert values["mean_cosine"] > 0.999 and values["ranking_agreement"] == 1.0
    assert gate.judge("fp16", "embedding", values, Gate()).passed
    shuffled = gate.metrics("embedding", [reference], [rng.normal(size=(20, 8))], None)
    verdict = gate.judge("int8_static", "embedding", shuffled, Gate())
    assert not verdict.passed
    assert any(r.startswith("mean cosine") for r in verdict.reasons)


def test_an_optional_deviation_bound_is_enforced():
    values = {"max_abs_deviation": 0.3, "top1_agreement": 1.0}
    assert not gate.judge("fp16", "classification", values, Gate(max_abs_deviation=0.1)).passed
    assert gate.judge("fp16", "classification", values, Gate(max_abs_deviation=0.5)).passed


def _corrupt(source, target, scale=0.5, seed=0):
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
    tmp_path, digits_job, monkeypatch
):
    repository = tmp_path / "repo"
    stale = repository / "digits_fp16" / "1"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"from an earlier run")
    monkeypatch.setattr(
        pipeline.variants, "to_fp16", lambda base, target: _corrupt(base, target, scale=3.0)
    )
    job = pipeline.Job(**{**digits_job.__dict__, "variants": ("fp16",), "build_tensorrt": False})

    report = convert(job, repository, quiet_console())

    verdict = report.results["fp16"].verdict
    assert not verdict.passed and "accuracy drop" in verdict.reasons[0]
    assert not (repository / "digits_fp16").exists()
    assert report.served == ["digits"]
    manifest = json.loads((repository / "digits" / "manifest.json").read_text())
    assert manifest["variants"]["fp16"]["passed"] is False
    assert manifest["variants"]["fp16"]["served_as"] is None
    assert "accuracy drop" in manifest["variants"]["fp16"]["reasons"][0]


def test_a_corrupted_minilm_is_rejected_on_cosine_and_ranking(tmp_path, minilm_converted):
    workdir, validation = minilm_converted.workdir, minilm_converted.job.validation
    broken = _corrupt(workdir / "fp32.onnx", tmp_path / "broken.onnx", scale=1.0)
    reference = gate.run(workdir / "fp32.onnx", validation)
    values = gate.metrics("embedding", reference, gate.run(broken, validation), None)
    verdict = gate.judge("int8_static", "embedding", values, minilm_converted.job.gate)
    assert not verdict.passed
    assert values["mean_cosine"] < 0.99


def test_every_minilm_variant_was_judged_on_the_held_out_sentences(minilm_converted):
    from conversion import minilm

    job = minilm_converted.job
    assert len(job.validation) == 96
    assert not set(minilm.validation_sentences(96)) & set(minilm.calibration_sentences(32))
    for result in minilm_converted.report.results.values():
        assert {"mean_cosine", "min_cosine", "ranking_agreement", "max_abs_deviation"} <= set(
            result.verdict.metrics
        )


def test_static_qdq_with_defaults_on_the_unfused_minilm_is_rejected_and_not_served(
    tmp_path, minilm_job
):
    """The measured trap: QDQ over every MatMul of the plain export (attention scores included)
    collapses MiniLM (mean cosine ~0.37). The gate must catch it on the held-out sentences."""
    job = pipeline.Job(
        **{
            **minilm_job.__dict__,
            "transformer": None,
            "variants": ("int8_static",),
            "static_per_channel": False,
            "build_tensorrt": False,
            "bench_batch_sizes": (1,),
        }
    )
    repository = tmp_path / "repo"

    report = convert(job, repository, quiet_console())

    verdict = report.results["int8_static"].verdict
    assert not verdict.passed
    assert verdict.metrics["mean_cosine"] < 0.9
    assert any(r.startswith("mean cosine") for r in verdict.reasons)
    assert any(r.startswith("ranking agreement") for r in verdict.reasons)
    assert report.int8_selected is None and not (repository / "minilm_int8").exists()
    assert report.served == ["minilm"]

"""OpenVINO variants: NNCF INT8 and BF16 from the unfused export, gated like every variant, and
published for Triton's OpenVINO backend with the parameters it documents."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conversion import gate, openvino_variants, pipeline
from conversion.openvino_parameters import runtime_properties
from conversion.repository import publish
from conversion.settings import GateSettings
from conversion.triton_config import read_config
from tests.conversion.conftest import tuned

# the session fixture converts MiniLM with every variant (NNCF included) before the first test
pytestmark = pytest.mark.timeout(1500)


# measured on MiniLM: OpenVINO INT8 with BF16 floating-point layers is accurate on an AMD Zen 4
# (AVX512_BF16) and not on an Intel Xeon with AMX, where only FP32 layers keep it accurate
AMX = "amx_bf16" in Path("/proc/cpuinfo").read_text()


def test_ov_int8_is_quantized_as_a_transformer_and_is_batch_invariant(minilm_converted):
    metrics = minilm_converted.report.results["ov_int8"].verdict.metrics["embedding"]
    assert metrics["mean_cosine"] > 0.95  # 0.64 quantized without ModelType.TRANSFORMER
    assert metrics["batch_dependence"] <= GateSettings().max_batch_dependence


@pytest.mark.skipif(AMX, reason="on a CPU with AMX, ov_int8's BF16 layers cost it the gate")
def test_ov_int8_passes_the_gate_on_a_cpu_without_amx(minilm_converted):
    result = minilm_converted.report.results["ov_int8"]
    assert result.passed, result.verdict.reasons
    assert result.verdict.metrics["embedding"]["mean_cosine"] > 0.99


@pytest.mark.skipif(not AMX, reason="needs a CPU with AMX")
def test_on_a_cpu_with_amx_ov_int8_is_refused_and_the_reason_says_fp32_would_pass(
    minilm_converted,
):
    result = minilm_converted.report.results["ov_int8"]
    assert not result.passed and result.served_as is None
    assert result.inference_precision == "bf16"
    note = result.verdict.reasons[-1]
    assert note.startswith("its floating-point layers ran in BF16 on this CPU")
    assert "in FP32 it passes (embedding: cos 0.99" in note


@pytest.mark.skipif(not AMX, reason="needs a CPU with AMX")
def test_a_refusal_that_fp32_would_not_lift_gets_no_bf16_note(minilm_converted):
    converted = minilm_converted
    result = converted.report.results["ov_int8"]
    refused = ["embedding: mean cosine 0.9774 < 0.9999"]
    judged = replace(result, verdict=replace(result.verdict, reasons=list(refused)))
    strict = tuned(converted.conversion, gate={"min_mean_cosine": 0.9999})  # FP32 gives 0.997
    outputs = converted.report.exported.outputs
    fp32 = gate.run(converted.report.results["fp32"].path, strict.validation, outputs)

    pipeline.note_bf16(judged, fp32, outputs, strict)

    assert judged.verdict.reasons == refused


def test_only_ov_int8_with_bf16_layers_is_suspected_of_a_bf16_refusal():
    assert openvino_variants.bf16_may_be_at_fault("ov_int8", "bf16")
    assert not openvino_variants.bf16_may_be_at_fault("ov_int8", "f32")
    assert not openvino_variants.bf16_may_be_at_fault("ov_bf16", "bf16")


def test_ort_dynamic_int8_on_minilm_is_refused_because_its_answers_depend_on_batch_mates(
    minilm_converted,
):
    verdict = minilm_converted.report.results["int8_dynamic"].verdict
    assert verdict.batch_dependent
    assert verdict.metrics["embedding"]["batch_dependence"] > GateSettings().max_batch_dependence


def test_every_variant_reports_its_measured_batch_dependence_in_the_manifest(minilm_converted):
    manifest = json.loads(minilm_converted.report.manifest.read_text())
    for kind, entry in manifest["variants"].items():
        assert "batch_dependence" in entry["metrics"]["embedding"], kind


def test_ov_bf16_says_which_precision_it_ran_in(minilm_converted):
    result = minilm_converted.report.results["ov_bf16"]
    expected = "bf16" if openvino_variants.cpu_has_bf16() else "f32"
    assert result.inference_precision == expected
    stored = openvino_variants.parameters(result.path)
    assert stored == ({"HINT_BF16": "YES"} if expected == "bf16" else {})


def test_an_openvino_variant_is_published_for_the_openvino_backend(tmp_path, minilm_converted):
    converted = minilm_converted
    result = converted.report.results["ov_bf16"]
    fp32 = converted.report.results["fp32"].path
    spec = pipeline.model_config(converted.conversion, converted.report.exported, fp32)
    spec = pipeline.openvino_spec(
        replace(spec, name="minilm_ov_bf16"), result.path, converted.conversion
    )
    extra = {"model.bin": openvino_variants.weights(result.path)}

    model_dir = publish(tmp_path, spec, result.path, gpu_precision=None, extra_files=extra)

    config = read_config(model_dir / "config.pbtxt")
    assert config.backend == "openvino" and config.platform == ""
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == ["model.bin", "model.xml"]
    parameters = {k: v.string_value for k, v in config.parameters.items()}
    assert parameters["PERFORMANCE_HINT"] == "LATENCY" and parameters["NUM_STREAMS"] == "1"
    assert parameters["INFERENCE_NUM_THREADS"] == "1"
    assert "intra_op_thread_count" not in parameters
    assert not config.optimization.HasField("graph")
    gpu = read_config(model_dir / "configs" / "gpu.pbtxt")
    assert [g.kind for g in gpu.instance_group] == [g.kind for g in config.instance_group]


def test_the_backend_parameters_become_openvino_properties():
    properties = runtime_properties(
        {"PERFORMANCE_HINT": "latency", "NUM_STREAMS": "auto", "HINT_BF16": "YES", "other": "x"}
    )
    assert properties == {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "AUTO",
        "INFERENCE_PRECISION_HINT": "bf16",
    }


@pytest.mark.parametrize(
    "parameters",
    [{"HINT_BF16": "NO"}, {"PERFORMANCE_HINT": "FAST"}, {"INFERENCE_NUM_THREADS": "-1"}],
)
def test_a_parameter_value_the_backend_refuses_is_refused(parameters):
    with pytest.raises(ValueError):
        runtime_properties(parameters)

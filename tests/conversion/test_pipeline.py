"""Each step of the pipeline, one test per branch, on the zoo's tiny models (seconds each)."""

import json
from dataclasses import replace

import numpy as np
import onnx
import pytest
from rich.console import Console

from conversion import pipeline
from conversion.gate import Verdict
from conversion.pipeline import VariantResult, choose, convert
from conversion.progress import StepError, Steps
from conversion.settings import GateSettings, TransformerHint
from conversion.spec import Dataset, InputSpec, OutputSpec, SpecError
from tests.conversion import zoo
from tests.conversion.conftest import quiet_console, tuned

DICT_OUTPUT = next(c for c in zoo.SERVED if c.name == "dict_output")


def _steps(console=None) -> Steps:
    return Steps("test", console or quiet_console())


def _converted(case, tmp_path, **changes):
    conversion = tuned(case.conversion(), **changes) if changes else case.conversion()
    report = convert(conversion, tmp_path / "repo", quiet_console(), workdir=tmp_path / "work")
    return conversion, report


# check data


def test_a_task_that_does_not_exist_is_refused_before_any_work():
    conversion = replace(DICT_OUTPUT.conversion(), task="ranking", outputs=())
    with pytest.raises(SpecError, match=r"task \['ranking'\] is not one of"):
        pipeline.check_data(conversion, _steps())


def test_a_regression_output_without_a_deviation_bound_is_refused():
    conversion = replace(DICT_OUTPUT.conversion(), outputs=(OutputSpec("logits", "regression"),))
    with pytest.raises(SpecError, match="task 'regression' needs --max-deviation"):
        pipeline.check_data(conversion, _steps())


def test_an_empty_dataset_is_refused_naming_it():
    conversion = replace(DICT_OUTPUT.conversion(), calibration=Dataset([]))
    with pytest.raises(StepError, match="the calibration dataset is empty"):
        pipeline.check_data(conversion, _steps())
    with pytest.raises(SpecError, match="the validation dataset is empty"):
        pipeline.check_data(replace(conversion, validation=Dataset([])), _steps())


def test_batches_with_other_inputs_than_the_spec_are_refused():
    conversion = replace(
        DICT_OUTPUT.conversion(), inputs=(InputSpec("pixels", "float32", ("batch", 4)),)
    )
    with pytest.raises(
        StepError, match=r"calibration batch has inputs \['x'\], the spec says \['pixels'\]"
    ):
        pipeline.check_data(conversion, _steps())


def test_undeclared_inputs_are_inferred_from_the_data_and_printed():
    console = Console(record=True, width=200)
    inputs = pipeline.check_data(zoo.SERVED[-1].conversion(), _steps(console))
    assert [str(s) for s in inputs] == ["features:float32:batch,4", "category:int64:batch"]
    assert (
        "inputs features:float32:batch,4 category:int64:batch (inferred)" in console.export_text()
    )


def test_an_onnx_files_inputs_are_read_from_its_graph(tmp_path):
    _converted(DICT_OUTPUT, tmp_path)
    onnx_file = tmp_path / "work" / "exported.onnx"
    conversion = replace(DICT_OUTPUT.conversion(), source=onnx_file)
    assert pipeline.resolve_inputs(conversion) == (InputSpec("x", "float32", ("batch", 4)),)


# load onnx


def test_a_missing_onnx_file_is_named(tmp_path):
    conversion = replace(DICT_OUTPUT.conversion(), source=tmp_path / "missing.onnx")
    with pytest.raises(StepError, match=r"missing\.onnx does not exist"):
        pipeline.load_onnx(conversion, conversion.inputs, tmp_path, _steps())


def test_an_output_the_onnx_file_lacks_is_named_with_those_it_has(tmp_path):
    _converted(DICT_OUTPUT, tmp_path)
    conversion = replace(
        DICT_OUTPUT.conversion(),
        source=tmp_path / "work" / "exported.onnx",
        outputs=(OutputSpec("scores"),),
    )
    inputs = pipeline.resolve_inputs(conversion)
    with pytest.raises(
        StepError,
        match=r"the model has no output \['scores'\]; its outputs are \['logits', 'embedding'\]",
    ):
        pipeline.load_onnx(conversion, inputs, tmp_path, _steps())


def test_an_onnx_model_with_a_fixed_batch_axis_is_refused(tmp_path):
    _converted(DICT_OUTPUT, tmp_path)
    model = onnx.load(str(tmp_path / "work" / "exported.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    conversion = replace(DICT_OUTPUT.conversion(), source=tmp_path / "fixed.onnx")
    with pytest.raises(StepError, match=r"fixed.onnx has a fixed batch axis \('x' axis 0 is 4\)"):
        pipeline.load_onnx(
            conversion, (InputSpec("x", "float32", ("batch", 4)),), tmp_path, _steps()
        )
    undeclared = replace(conversion, inputs=())  # read from the graph: named before the data
    with pytest.raises(SpecError, match=r"re-export it with a dynamic batch axis.*dynamic_axes"):
        convert(undeclared, tmp_path / "repo", quiet_console(), workdir=tmp_path / "again")


def test_an_onnx_model_with_its_weights_in_external_data_is_converted_and_served(tmp_path):
    _converted(DICT_OUTPUT, tmp_path / "first", quantization={"variants": ()})
    model = onnx.load(str(tmp_path / "first" / "work" / "exported.onnx"))
    onnx.save_model(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        location="m.onnx.data",
        size_threshold=0,
    )
    assert (tmp_path / "m.onnx.data").exists()  # as torch.onnx.export writes it by default
    conversion = tuned(
        replace(DICT_OUTPUT.conversion(), source=tmp_path / "m.onnx"),
        quantization={"variants": ("fp16",)},
    )
    report = convert(conversion, tmp_path / "repo", quiet_console())
    assert "dict_output" in report.served
    assert (tmp_path / "repo" / "dict_output" / "1" / "model.onnx").exists()


def test_an_onnx_source_is_judged_against_itself_with_its_absolute_accuracy(tmp_path):
    _converted(DICT_OUTPUT, tmp_path / "first")
    onnx_file = tmp_path / "first" / "work" / "exported.onnx"
    conversion = replace(DICT_OUTPUT.conversion(), source=onnx_file)
    labels = np.zeros(len(conversion.validation), np.int64)
    conversion = replace(conversion, validation=replace(conversion.validation, labels=labels))
    report = convert(conversion, tmp_path / "repo", quiet_console())
    verdict = report.results["fp32"].verdict
    assert verdict.reference == "fp32" and 0 <= verdict.metrics["logits"]["accuracy"] <= 1


# export


def test_the_outputs_a_model_returns_are_inferred_and_printed(tmp_path):
    console = Console(record=True, width=200)
    conversion = replace(DICT_OUTPUT.conversion(), outputs=())
    convert(conversion, tmp_path / "repo", console)
    assert (
        "outputs embedding:classification logits:classification (inferred)" in console.export_text()
    )


# optimize


def test_a_transformer_hint_that_fuses_no_attention_says_so(tmp_path):
    console = Console(record=True, width=300)
    conversion = DICT_OUTPUT.conversion()
    settings = replace(conversion.settings, transformer=TransformerHint("bert", 2, 8))
    convert(replace(conversion, settings=settings), tmp_path / "repo", console)
    text = " ".join(console.export_text().split())
    assert (
        "dict_output: --transformer fused no Attention: the ORT transformers optimizer fuses attention only in a model run with eager attention"
        in text
    )


# variants


def test_an_unknown_variant_is_refused(tmp_path):
    with pytest.raises(StepError, match="unknown variant 'int4'"):
        _converted(DICT_OUTPUT, tmp_path, quantization={"variants": ("int4",)})


def test_a_variant_that_fails_to_build_is_rejected_with_its_node_and_what_to_try(
    tmp_path, monkeypatch
):
    def broken(source, target, *args):
        raise ValueError("Unsupported quantization of tensor /model/body/Gemm_output_0")

    monkeypatch.setattr(pipeline.variants, "int8_dynamic", broken)
    _, report = _converted(
        DICT_OUTPUT, tmp_path, quantization={"variants": ("int8_dynamic", "fp16")}
    )
    error = report.results["int8_dynamic"].error
    assert error == (
        "could not be built or loaded: ValueError: Unsupported quantization of tensor "
        "/model/body/Gemm_output_0 (at node '/model/body/Gemm', Gemm); try --keep-fp32 "
        "'/model/body/Gemm' (keeps that Gemm in FP32), or leave int8_dynamic out of --variants"
    )
    assert report.results["fp16"].passed  # the others go on


def test_nodes_the_user_keeps_in_fp32_stay_fp32(tmp_path):
    _, report = _converted(
        zoo.OUTLIER,
        tmp_path,
        quantization={
            "variants": ("int8_static",),
            "keep_fp32": ("/model/head/Gemm",),
            "search_budget_s": 0,
        },
    )
    graph = onnx.load(str(tmp_path / "work" / "int8_static.onnx")).graph
    head = next(n for n in graph.node if n.name == "/model/head/Gemm")
    weights = next(i for i in graph.initializer if i.name == head.input[1])
    assert weights.data_type == onnx.TensorProto.FLOAT
    assert report.results["int8_static"].kept_fp32 == ("/model/head/Gemm",)


# INT8 search


def test_a_failing_int8_variant_gets_the_fewest_fp32_nodes_that_make_it_pass(tmp_path):
    _, report = _converted(
        zoo.OUTLIER,
        tmp_path,
        quantization={"variants": ("int8_static",)},
        latency={"serve_slower": True},  # INT8 is no faster than FP32 on a model this small
    )
    assert not report.results["int8_static"].passed
    (search,) = report.searches
    assert search.kept_fp32 == ("/model/wide/Gemm", "/model/head/Gemm")
    mixed = report.results["int8_static_mixed"]
    assert mixed.passed and mixed.latency_ms and mixed.kept_fp32 == search.kept_fp32
    manifest = json.loads((tmp_path / "repo" / "outlier" / "manifest.json").read_text())
    assert manifest["int8_search"][0]["kept_fp32"] == list(search.kept_fp32)
    assert manifest["variants"]["int8_static_mixed"]["kept_fp32"] == list(search.kept_fp32)
    # the search judges like the gate: the mixed variant's batch dependence is measured too
    assert "batch_dependence" in manifest["variants"]["int8_static_mixed"]["metrics"]["output"]


def test_an_int8_kind_already_slower_than_fp32_is_not_searched(tmp_path):
    _, report = _converted(zoo.OUTLIER, tmp_path, quantization={"variants": ("int8_static",)})
    assert report.searches == []
    assert report.skipped["int8_static search"].startswith(
        "fully quantized it is already not faster than FP32 here"
    )


def test_without_a_search_budget_a_failing_int8_variant_is_only_rejected(tmp_path):
    _, report = _converted(
        zoo.OUTLIER, tmp_path, quantization={"variants": ("int8_static",), "search_budget_s": 0}
    )
    assert report.searches == [] and "int8_static_mixed" not in report.results


# choose


def _result(kind, ms, passed=True):
    verdict = Verdict(kind, "fp32", {}, [] if passed else ["y: worse"])
    return VariantResult(
        kind, verdict=verdict, latency_ms=dict(zip(("1", "8", "32"), ms, strict=True))
    )


def _choose(results, **latency):
    conversion = tuned(DICT_OUTPUT.conversion(), latency={"batch_sizes": (1, 8, 32), **latency})
    return choose(results, conversion)


def test_the_fastest_passing_int8_kind_is_served_and_the_other_says_why_not():
    results = {
        "fp32": _result("fp32", (1, 4, 10)),
        "int8_dynamic": _result("int8_dynamic", (0.5, 3, 8)),
        "int8_static": _result("int8_static", (0.5, 2, 6)),
    }
    assert _choose(results) == {
        "fp32": "fp32",
        "fp16": None,
        "int8": "int8_static",
        "ov_int8": None,
        "ov_bf16": None,
    }
    assert results["int8_dynamic"].not_served == "int8_static is faster at batch 32"


def test_an_fp16_variant_slower_than_fp32_everywhere_is_not_served_unless_asked():
    results = {"fp32": _result("fp32", (1, 4, 10)), "fp16": _result("fp16", (1.4, 6, 16))}
    assert _choose(results)["fp16"] is None
    assert results["fp16"].not_served.startswith("slower than FP32 here")
    assert _choose(results, serve_slower=True)["fp16"] == "fp16"
    assert results["fp16"].not_served is None


def test_an_int8_variant_slower_than_fp32_is_not_served():
    results = {
        "fp32": _result("fp32", (1, 4, 10)),
        "int8_dynamic": _result("int8_dynamic", (3, 20, 90)),
    }
    assert _choose(results)["int8"] is None
    assert results["int8_dynamic"].not_served.startswith("not faster than FP32 here")


def test_a_variant_that_failed_the_gate_is_never_served():
    results = {
        "fp32": _result("fp32", (1, 4, 10)),
        "fp16": _result("fp16", (1, 4, 10), passed=False),
    }
    assert _choose(results, serve_slower=True)["fp16"] is None


# publish


def test_a_variant_no_longer_served_loses_its_model_and_its_text_ensemble(tmp_path):
    for stale in ("dict_output_fp16", "dict_output_fp16_text"):
        (tmp_path / "repo" / stale / "1").mkdir(parents=True)
    _converted(DICT_OUTPUT, tmp_path)
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["dict_output"]


def test_the_published_config_has_every_output_with_its_graph_dims_and_dtype(tmp_path):
    from conversion.triton_config import read_config

    _converted(zoo.SERVED[-1], tmp_path)
    config = read_config(tmp_path / "repo" / "mixed_dtypes" / "config.pbtxt")
    assert [(i.name, list(i.dims)) for i in config.input] == [("features", [4]), ("category", [1])]
    assert config.input[1].HasField("reshape") and list(config.input[1].reshape.shape) == []
    assert not config.input[0].HasField("reshape")
    assert [(o.name, list(o.dims)) for o in config.output] == [("output", [3])]


def test_the_gate_fails_when_the_fp32_export_does_not_match_pytorch_on_the_validation_set(tmp_path):
    case = next(c for c in zoo.REFUSED if c.name == "branchy")
    with pytest.raises(StepError) as caught:
        _converted(case, tmp_path)
    assert str(caught.value).startswith(case.refused)
    assert (
        "an output is swapped or mislabelled, or the export matched PyTorch on the sample rows only"
        in str(caught.value)
    )


def test_a_gate_setting_applies_to_every_output(tmp_path):
    conversion = replace(
        DICT_OUTPUT.conversion(),
        settings=replace(
            DICT_OUTPUT.conversion().settings, gate=GateSettings(max_abs_deviation=1e-5)
        ),
    )
    report = convert(
        replace(
            conversion,
            settings=replace(
                conversion.settings,
                quantization=replace(conversion.settings.quantization, variants=("fp16",)),
            ),
        ),
        tmp_path / "repo",
        quiet_console(),
    )
    reasons = report.results["fp16"].verdict.reasons
    assert {r.split(":")[0] for r in reasons} == {"logits", "embedding"}

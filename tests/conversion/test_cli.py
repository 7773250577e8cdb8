"""`python -m conversion ...` as a user runs it: clear one-line failures, a working conversion."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "conversion", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result.said = " ".join(result.stderr.split())  # rich wraps long lines
    return result


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, digits_conversion):
    root = tmp_path_factory.mktemp("npz")
    images = np.concatenate([b["image"] for b in digits_conversion.validation.batches])
    np.savez(
        root / "calib.npz",
        image=np.concatenate([b["image"] for b in digits_conversion.calibration.batches]),
    )
    np.savez(root / "valid.npz", image=images, labels=digits_conversion.validation.labels)
    np.savez(root / "valid-unlabelled.npz", image=images)
    np.savez(root / "wrong.npz", image=np.zeros((8, 1, 9, 9), np.float32))
    return root


def _args(
    model, datasets, repository, spec="image:float32:batch,1,8,8", calib="calib.npz", **extra
):
    args = [
        "convert",
        "--model",
        str(model),
        "--name",
        "user",
        "--input",
        spec,
        "--output",
        "logits",
        "--calibration",
        str(datasets / calib),
        "--validation",
        str(datasets / "valid.npz"),
        "--repository",
        str(repository),
    ]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    return args


def test_a_malformed_input_spec_fails_naming_the_step_without_a_stack_trace(tmp_path, datasets):
    result = run_cli(
        *_args(
            "tests.conversion.factories:digits_untrained", datasets, tmp_path, spec="image:float32"
        )
    )
    assert result.returncode == 1
    assert (
        "step 'read arguments' failed: input spec 'image:float32': expected name:dtype:dims"
        in result.said
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_data_of_the_wrong_shape_is_named(tmp_path, datasets):
    result = run_cli(
        *_args("tests.conversion.factories:digits_untrained", datasets, tmp_path, calib="wrong.npz")
    )
    assert result.returncode == 1
    assert (
        "step 'check calibration data' failed: SpecError: calibration data: input 'image' axis 2 "
        "is 9, the spec says 8" in result.said
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_an_input_spec_the_model_does_not_accept_fails_at_export(tmp_path, datasets):
    np.savez(tmp_path / "c.npz", image=np.zeros((8, 1, 6, 6), np.float32))
    np.savez(tmp_path / "v.npz", image=np.zeros((8, 1, 6, 6), np.float32))
    args = _args(
        "tests.conversion.factories:digits_untrained",
        tmp_path,
        tmp_path / "repo",
        spec="image:float32:batch,1,6,6",
        calib="c.npz",
    )
    args[args.index("--validation") + 1] = str(tmp_path / "v.npz")
    result = run_cli(*args)
    assert result.returncode == 1
    assert (
        "step 'export' failed: SpecError: DigitsCNN.forward(image) does not accept the inputs image:float32:batch,1,6,6: RuntimeError: mat1 and mat2 "
        "shapes cannot be multiplied" in result.said
    )
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            "unexportable",
            "step 'export' failed: ExportError: torch.onnx.export failed: Exporting the operator 'aten::median'",
        ),
        (
            "not_a_module",
            "step 'load model' failed: SpecError: model 'tests.conversion.factories:not_a_module': the factory returned str",
        ),
        (
            "missing",
            "step 'load model' failed: SpecError: model 'tests.conversion.factories:missing': tests.conversion.factories has no callable 'missing'",
        ),
    ],
)
def test_a_model_that_cannot_be_loaded_or_exported_fails_naming_the_step(
    tmp_path, datasets, factory, message
):
    result = run_cli(*_args(f"tests.conversion.factories:{factory}", datasets, tmp_path))
    assert result.returncode == 1
    assert message in result.said
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def random_digits(tmp_path_factory):
    """calib.npz and valid.npz of random 8x8 images: for refusals that come before any work."""
    root = tmp_path_factory.mktemp("random")
    images = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    np.savez(root / "calib.npz", image=images)
    np.savez(root / "valid.npz", image=images, labels=np.zeros(8, np.int64))
    return root


@pytest.mark.parametrize("name", ["..", "", "../x"])
def test_a_name_that_would_write_outside_its_folder_is_refused_in_one_line(
    tmp_path, random_digits, name
):
    args = _args("tests.conversion.factories:digits_untrained", random_digits, tmp_path / "repo")
    args[args.index("--name") + 1] = name
    result = run_cli(*args)
    assert result.returncode == 1
    assert f"conversion failed: model name {name!r}: use 1-200 letters" in result.said
    assert "Traceback" not in result.stderr + result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the repo


def test_a_name_another_model_serves_is_refused_in_one_line(tmp_path, random_digits):
    (tmp_path / "twoin").mkdir()
    (tmp_path / "twoin" / "manifest.json").write_text('{"served": ["twoin", "twoin_fp16"]}')
    args = _args("tests.conversion.factories:digits_untrained", random_digits, tmp_path)
    args[args.index("--name") + 1] = "twoin_fp16"
    result = run_cli(*args)
    assert result.returncode == 1
    assert (
        "conversion failed: model name 'twoin_fp16': it would write 'twoin_fp16', which model "
        "'twoin' serves" in result.said
    )
    assert not (tmp_path / "twoin_fp16").exists()


@pytest.mark.parametrize("size", ["0", "-5"])
def test_a_max_batch_size_below_one_is_refused_before_any_work(tmp_path, random_digits, size):
    args = _args("tests.conversion.factories:digits_untrained", random_digits, tmp_path)
    result = run_cli(*args, "--max-batch-size", size)
    assert result.returncode == 1
    assert f"step 'read arguments' failed: max batch size {size}: must be at least 1" in result.said
    assert "Traceback" not in result.stderr + result.stdout


def test_an_onnx_file_is_converted_into_served_variants_with_progress_per_step(
    tmp_path, datasets, digits_converted
):
    onnx_file = digits_converted.workdir / "exported.onnx"
    result = run_cli(*_args(onnx_file, datasets, tmp_path, variants="fp16,int8_static"))
    assert result.returncode == 0, result.stderr
    for step in (
        "load onnx",
        "optimize",
        "fp16",
        "int8_static",
        "accuracy gate",
        "latency",
        "publish",
    ):
        assert f"user: {step}" in result.said
    assert "tensorrt skipped" in result.said
    manifest = json.loads((tmp_path / "user" / "manifest.json").read_text())
    assert manifest["source"] == str(onnx_file)
    # each variant that passed is served, unless slower than FP32 on this machine (it says so)
    for variant, served_as in (("fp16", "user_fp16"), ("int8_static", "user_int8")):
        entry = manifest["variants"][variant]
        assert entry["passed"], entry["reasons"]
        assert (served_as in manifest["served"]) == (entry["not_served"] is None), entry
        assert (tmp_path / served_as / "1" / "model.onnx").exists() == (entry["not_served"] is None)
    assert "user" in manifest["served"]


def test_a_wrong_onnx_input_name_is_reported(tmp_path, datasets, digits_converted):
    onnx_file = digits_converted.workdir / "exported.onnx"
    np.savez(tmp_path / "c.npz", pixels=np.zeros((8, 1, 8, 8), np.float32))
    args = _args(
        onnx_file, tmp_path, tmp_path / "repo", spec="pixels:float32:batch,1,8,8", calib="c.npz"
    )
    args[args.index("--validation") + 1] = str(tmp_path / "c.npz")
    result = run_cli(*args)
    assert result.returncode == 1
    assert (
        "step 'load onnx' failed: SpecError: input spec names ['pixels'], the model's inputs are ['image']"
        in result.said
    )


def test_make_convert_passes_a_user_model_to_the_cli():
    result = subprocess.run(
        [
            "make",
            "-n",
            "convert",
            "MODEL=mypkg.models:build",
            "INPUTS=image:float32:batch,1,8,8",
            "OUTPUTS=logits",
            "CALIB=c.npz",
            "VALID=v.npz",
            "REPOSITORY=scratch",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    line = " ".join(result.stdout.replace("\\\n", " ").split())
    assert "-m conversion convert" in line
    for part in (
        '--model "mypkg.models:build"',
        '--name "build"',
        '--input "image:float32:batch,1,8,8"',
        '--output "logits"',
        '--calibration "c.npz"',
        '--validation "v.npz"',
        '--repository "scratch"',
    ):
        assert part in line
    demo = subprocess.run(
        ["make", "-n", "convert"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert '-m conversion demo --repository "model_repository"' in demo.stdout


def test_without_input_and_output_flags_the_spec_is_inferred_and_printed(tmp_path, datasets):
    args = _args("tests.conversion.factories:digits_untrained", datasets, tmp_path, variants="")
    for flag in ("--input", "--output"):
        del args[args.index(flag) : args.index(flag) + 2]
    args[args.index("--validation") + 1] = str(datasets / "valid-unlabelled.npz")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "user: inputs image:float32:batch,1,8,8 (inferred)" in result.said
    assert "user: outputs output:classification (inferred)" in result.said
    assert "the gate uses top-1 agreement with FP32" in result.said
    manifest = json.loads((tmp_path / "user" / "manifest.json").read_text())
    assert manifest["outputs"] == [{"name": "output", "task": "classification", "dims": None}]


def test_the_cli_defaults_are_the_settings_defaults():
    """One place for each default: the CLI reads them from conversion.settings."""
    import typer.main

    from conversion.__main__ import convert
    from conversion.settings import (
        GateSettings,
        LatencySettings,
        QuantizationSettings,
        ServingOptions,
    )

    defaults = {
        p.name: p.default
        for p in typer.main.get_command_from_info(
            typer.models.CommandInfo(callback=convert),
            pretty_exceptions_short=True,
            rich_markup_mode=None,
        ).params
    }
    assert defaults["variants"] == ",".join(QuantizationSettings.variants)
    assert defaults["calibration_method"] == QuantizationSettings.calibration_method
    assert defaults["keep_first_last"] == QuantizationSettings.keep_first_last
    assert defaults["int8_search_budget"] == QuantizationSettings.search_budget_s
    assert defaults["max_accuracy_drop"] == GateSettings.max_accuracy_drop
    assert defaults["min_cosine"] == GateSettings.min_mean_cosine
    assert defaults["serve_slower"] == LatencySettings.serve_slower
    assert defaults["max_batch_size"] == ServingOptions.max_batch_size


def test_a_refusal_prints_the_declared_dims_in_their_brackets(tmp_path):
    """rich would read `[batch,3]` as markup and drop it: messages are printed escaped."""
    np.savez(tmp_path / "d.npz", x=np.zeros((16, 4), np.float32))
    args = ["convert", "--model", "tests.conversion.zoo:tuple_output", "--name", "two"]
    args += ["--output", "logits:batch,3", "--output", "score:batch,1"]
    args += ["--calibration", str(tmp_path / "d.npz"), "--validation", str(tmp_path / "d.npz")]
    result = run_cli(*args, "--repository", str(tmp_path / "repo"))
    assert result.returncode == 1
    assert (
        "output 'logits' (tuple position 0): declared [batch,3], got [4, 1]; output 'score' "
        "(tuple position 1): declared [batch,1], got [4, 3]" in result.said
    )


def test_an_hf_folder_is_served_with_its_tokenizer_and_text_ensembles(tmp_path):
    from tests.conversion import zoo

    folder = zoo.bert_classifier_folder(tmp_path / "bert")
    calibration = zoo.text_file(tmp_path / "c.txt", 32, seed=1)
    validation = zoo.text_file(tmp_path / "v.txt", 32, seed=2, labels=("negative", "positive"))
    args = ["convert", "--model", f"hf:{folder}", "--name", "reviews", "--variants", ""]
    args += ["--calibration", str(calibration), "--validation", str(validation)]
    result = run_cli(*args, "--transformer", "auto", "--repository", str(tmp_path / "repo"))
    assert result.returncode == 0, result.stderr
    assert "fusions: Attention x2" in result.said
    assert "served models: reviews, reviews_tokenizer, reviews_text" in result.said
    assert (tmp_path / "repo" / "reviews_text" / "config.pbtxt").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--model", "hf:some/folder", "--input", "x:float32:batch,4"],
            "an hf: model has its own inputs and outputs: leave out --input/--output",
        ),
        (
            ["--model", "tests.conversion.factories:digits_untrained", "--transformer", "auto"],
            "--transformer auto reads an hf: model's config",
        ),
    ],
)
def test_arguments_that_do_not_fit_an_hf_folder_are_refused(tmp_path, extra, message):
    args = ["convert", "--name", "m", "--calibration", "c.npz", "--validation", "v.npz", *extra]
    result = run_cli(*args)
    assert result.returncode == 1
    assert f"step 'read arguments' failed: {message}" in result.said


def test_a_misspelled_op_type_is_refused_before_any_work(tmp_path, random_digits):
    args = _args("tests.conversion.factories:digits_untrained", random_digits, tmp_path)
    result = run_cli(*args, "--op-types", "Conv,Matmul")
    assert result.returncode == 1
    assert "--op-types Matmul: not an op type static INT8 quantizes" in result.said
    assert "Traceback" not in result.stderr + result.stdout


def test_the_op_types_given_are_what_static_int8_quantizes():
    from conversion.__main__ import _settings
    from conversion.settings import GateSettings

    settings = _settings(
        "fp32,int8_static", "minmax", 8, False, [], " MatMul, Gemm ,", 0, GateSettings(), False, 8
    )

    assert settings.quantization.op_types == ("MatMul", "Gemm")

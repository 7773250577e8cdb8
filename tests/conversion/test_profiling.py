from conversion.profiling import _random_inputs, ort_profile, torch_profile


def test_ort_profiling_attributes_the_time_to_operators(digits_converted, capsys):
    feed = digits_converted.conversion.validation.batches[0]
    by_op = ort_profile(digits_converted.workdir / "fp32.onnx", feed, top=5, runs=3)
    assert "FusedConv" in by_op or "Conv" in by_op
    assert all(ms >= 0 for ms in by_op.values())
    out = capsys.readouterr().out
    assert "ONNX Runtime profile" in out and "where the time goes" in out


def test_the_pytorch_profiler_lists_the_top_operators(digits_conversion, capsys):
    torch_profile(digits_conversion.source, digits_conversion.validation.batches[0], top=5, runs=2)
    assert "aten::" in capsys.readouterr().out


def test_an_onnx_file_is_profiled_on_random_inputs_of_its_shape(minilm_converted):
    feed = _random_inputs(minilm_converted.workdir / "int8_dynamic.onnx", batch=2)
    assert feed["input_ids"].shape == (2, 16) and feed["input_ids"].dtype.kind == "i"

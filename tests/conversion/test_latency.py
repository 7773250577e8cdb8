from conversion.latency import latency_table, tile_batch, too_slow

FP32 = {"1": 1.0, "8": 4.0, "32": 10.0}


def test_an_fp16_variant_slower_than_fp32_beyond_the_margin_in_the_median_is_too_slow():
    slower = {"1": 1.3, "8": 5.6, "32": 10.4}  # a busy moment may hide it at one batch size
    assert too_slow("fp16", FP32, slower, 0.25) == (
        "slower than FP32 here (b1 1.30x, b8 1.40x, b32 1.04x its latency; median 1.30x)"
    )


def test_an_fp16_variant_within_the_margin_in_the_median_is_served():
    assert too_slow("fp16", FP32, {"1": 1.1, "8": 4.4, "32": 16.0}, 0.25) is None


def test_an_int8_variant_must_be_faster_than_fp32_beyond_the_margin():
    assert too_slow("int8_dynamic", FP32, {"1": 0.5, "8": 3.6, "32": 9.0}, 0.25) == (
        "not faster than FP32 here (b1 0.50x, b8 0.90x, b32 0.90x its latency; median 0.90x)"
    )
    assert too_slow("int8_static_mixed", FP32, {"1": 2.0, "8": 3.0, "32": 7.0}, 0.25) is None


def test_one_lucky_batch_size_does_not_make_an_int8_variant_fast():
    """EfficientNet-Lite1 with 56 of 65 layers in FP32, timed on a loaded machine."""
    fp32 = {"1": 8.534, "8": 752.04, "32": 1524.169}
    mixed = {"1": 77.237, "8": 484.448, "32": 1446.958}
    assert too_slow("int8_static_mixed", fp32, mixed, 0.25).endswith("median 0.95x)")


def test_without_latencies_nothing_is_too_slow():
    assert too_slow("fp16", {}, {}, 0.25) is None


def test_models_are_timed_in_turns_at_every_batch_size(digits_converted):
    workdir = digits_converted.workdir
    sample = digits_converted.conversion.validation.batches[0]
    table = latency_table(
        {"fp32": workdir / "fp32.onnx", "int8": workdir / "int8_static.onnx"},
        sample,
        (1, 4),
        budget_s=0.02,
    )
    assert set(table) == {"fp32", "int8"} and set(table["fp32"]) == {"1", "4"}
    assert all(ms > 0 for row in table.values() for ms in row.values())


def test_a_batch_is_tiled_from_the_sample_rows():
    import numpy as np

    batch = tile_batch({"x": np.arange(3)}, 7)
    assert batch["x"].tolist() == [0, 1, 2, 0, 1, 2, 0]

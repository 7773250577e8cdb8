from conversion.latency import latency_table, tile_batch, too_slow

FP32 = {"1": 1.0, "8": 4.0, "32": 10.0}


def test_an_fp16_variant_slower_than_fp32_beyond_the_margin_in_the_median_is_too_slow():
    slower = {"1": 1.3, "8": 5.6, "32": 10.4}  # a busy moment may hide it at one batch size
    assert too_slow("fp16", FP32, slower, 0.25) == (
        "slower than FP32 here (b1 1.30x, b8 1.40x, b32 1.04x its latency; median 1.30x)"
    )


def test_an_fp16_variant_within_the_margin_in_the_median_is_served():
    assert too_slow("fp16", FP32, {"1": 1.1, "8": 4.4, "32": 16.0}, 0.25) is None


def test_an_int8_variant_must_be_faster_than_fp32_at_the_largest_batch():
    assert too_slow("int8_dynamic", FP32, {"1": 0.5, "8": 2.0, "32": 10.5}, 0.25) == (
        "not faster than FP32 at batch 32 (1.05x its latency)"
    )
    assert too_slow("int8_static_mixed", FP32, {"1": 2.0, "8": 5.0, "32": 9.0}, 0.25) is None


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

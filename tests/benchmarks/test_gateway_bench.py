"""The gateway benchmark reads its latency from the gateway's own histogram."""

import pytest

from benchmarks.gateway import Configuration, configurations, histogram_quantile, markdown


def test_the_median_is_interpolated_inside_the_bucket_that_holds_it():
    before = {0.0005: 10.0, 0.001: 10.0, float("inf"): 10.0}
    after = {0.0005: 60.0, 0.001: 110.0, float("inf"): 110.0}  # 50 below 0.5 ms, 50 in (0.5, 1]
    assert histogram_quantile(before, after, 0.5) == pytest.approx(0.0005)
    assert histogram_quantile(before, after, 0.75) == pytest.approx(0.00075)


def test_no_new_samples_gives_no_quantile():
    counts = {0.001: 5.0, float("inf"): 5.0}
    assert histogram_quantile(counts, counts, 0.5) is None


def test_each_worker_count_is_measured_unpinned_then_pinned_to_the_highest_cpus(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert configurations((1, 2)) == [
        Configuration(1), Configuration(1, (3,)), Configuration(2), Configuration(2, (2, 3))]
    assert configurations((1,), pinned=False) == [Configuration(1)]
    assert Configuration(2, (2, 3)).label == "2 workers, pinned to CPU 2,3"


def test_the_report_table_has_one_row_per_configuration_with_the_floor_beside_the_gateway():
    row = {"configuration": "1 worker", "workers": 1, "hit_p50_ms_inside_gateway": 0.3,
           "hit_p50_ms_client": 0.5, "hits_per_s_c32": 3100.0, "hit_p99_ms_c32": 20.0,
           "hit_load_generator": "wrk", "triton_direct_p50_ms": 2.5, "passthrough_p50_ms": 3.0,
           "gateway_miss_p50_ms": 3.6, "passthrough_overhead_p50_ms": 0.5, "miss_overhead_p50_ms": 1.1}
    text = markdown({"hardware": "test cpu", "rows": [row, {**row, "configuration": "2 workers"}]})
    assert text.count("\n| 1 worker |") == 1 and text.count("\n| 2 workers |") == 1
    assert "3,100" in text and "| 0.500 | 1.100 |" in text and "test cpu" in text and "with wrk" in text

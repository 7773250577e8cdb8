"""The gateway benchmark reads its latency from the gateway's own histogram."""

from contextlib import contextmanager

import pytest

from benchmarks import gateway as gateway_bench
from benchmarks.gateway import Configuration, configurations, histogram_quantile, markdown
from localstack.stack import StackPorts


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
        Configuration(1),
        Configuration(1, (3,)),
        Configuration(2),
        Configuration(2, (2, 3)),
    ]
    assert configurations((1,), pinned=False) == [Configuration(1)]
    assert Configuration(2, (2, 3)).label == "2 workers, pinned to CPU 2,3"


def test_the_report_has_a_hit_row_per_configuration_and_a_miss_row_per_target():
    row = {
        "configuration": "1 worker",
        "workers": 1,
        "hit_p50_ms_inside_gateway": 0.3,
        "hit_p50_ms_client": 0.5,
        "hits_per_s_c32": 3100.0,
        "hit_p99_ms_c32": 20.0,
        "hit_load_generator": "wrk",
    }
    misses = {
        "rounds": 2,
        "calls_per_target": 1000,
        "rows": [
            {
                "target": "Triton direct",
                "p50_ms": [2.5, 2.7],
                "overhead_p50_ms": None,
                "overhead_range_ms": None,
            },
            {
                "target": "gateway-grpc",
                "p50_ms": [2.8, 3.1],
                "overhead_p50_ms": 0.35,
                "overhead_range_ms": [0.3, 0.4],
            },
        ],
    }
    text = markdown(
        {
            "hardware": "test cpu",
            "rows": [row, {**row, "configuration": "2 workers"}],
            "misses": misses,
        }
    )
    assert text.count("\n| 1 worker |") == 1 and text.count("\n| 2 workers |") == 1
    assert "3,100" in text and "test cpu" in text and "with wrk" in text
    assert "| gateway-grpc | 2.800 / 3.100 | 0.350 | 0.300 to 0.400 |" in text
    assert "| Triton direct | 2.500 / 2.700 | - | - |" in text
    assert "perf_analyzer" not in text  # a result recorded before the HTTP row existed


def test_the_report_has_a_perf_analyzer_http_row_per_target():
    http = {
        "requests": 2000,
        "concurrency": 1,
        "rows": [
            {
                "target": "gateway HTTP, hits, binary",
                "p50_ms": 0.41,
                "p99_ms": 2.5,
                "throughput": 2100.0,
            },
            {
                "target": "gateway HTTP, hits, JSON",
                "p50_ms": 0.52,
                "p99_ms": 3.0,
                "throughput": 1800.0,
            },
        ],
    }
    text = markdown(
        {
            "rows": [],
            "misses": {"rounds": 0, "calls_per_target": 0, "rows": []},
            "perf_analyzer_http": http,
        }
    )
    assert "## perf_analyzer over HTTP (`-i http`, concurrency 1, 2,000 requests each)" in text
    assert "| gateway HTTP, hits, binary | 0.410 | 2.500 | 2,100 |" in text
    assert "| gateway HTTP, hits, JSON | 0.520 | 3.000 | 1,800 |" in text


def test_a_targets_overhead_is_the_median_over_runs_of_its_paired_overhead(monkeypatch, tmp_path):
    overheads = iter([[0, 0.5, 0.6, 0.2, 1.0], [0, 0.2, 0.3, 0.1, 0.7], [0, 0.3, 0.4, 0.15, 0.8]])

    def paired(addresses, calls):
        assert len(addresses) == 5 and calls == 1000
        return {"p50_ms": [3.0, 3.4, 3.5, 3.2, 3.9], "paired_overhead_p50_ms": next(overheads)}

    class Stack:
        ports = StackPorts.free()

        def __init__(self, *args, **kwargs):
            pass

        start = stop = lambda self: None

    @contextmanager
    def address(*args, **kwargs):
        yield "127.0.0.1:1"

    monkeypatch.setattr(gateway_bench, "LocalStack", Stack)
    monkeypatch.setattr(gateway_bench.passthrough, "running", address)
    monkeypatch.setattr(gateway_bench, "gateway_grpc", address)
    monkeypatch.setattr(gateway_bench, "paired", paired)

    rows = {
        r["target"]: r for r in gateway_bench.measure_misses(tmp_path, tmp_path, rounds=3)["rows"]
    }

    native = rows["gateway-grpc, 1 Go thread (GOMAXPROCS=1)"]
    assert native["p50_ms"] == [3.4, 3.4, 3.4]
    assert native["overhead_p50_ms"] == pytest.approx(0.3)  # median of 0.5, 0.2, 0.3
    assert native["overhead_range_ms"] == pytest.approx([0.2, 0.5])
    assert rows["gateway-grpc, cache off (1 Go thread)"]["overhead_p50_ms"] == pytest.approx(0.15)
    assert rows["Triton direct"]["overhead_p50_ms"] is None


def test_paired_infer_is_asked_for_and_its_json_read(monkeypatch, tmp_path):
    binary = tmp_path / "paired-infer"
    binary.write_text(
        '#!/bin/sh\necho "$@" > ' + str(tmp_path / "args") + "\n"
        'echo \'{"p50_ms": [3.0, 3.5], "paired_overhead_p50_ms": [0, 0.4]}\'\n'
    )
    binary.chmod(0o755)
    monkeypatch.setattr(gateway_bench, "PAIRED_INFER", binary)

    result = gateway_bench.paired(["127.0.0.1:1", "127.0.0.1:2"], 20)

    assert result["paired_overhead_p50_ms"] == [0, 0.4]
    assert (tmp_path / "args").read_text().split() == [
        "-targets",
        "127.0.0.1:1,127.0.0.1:2",
        "-calls",
        "20",
    ]

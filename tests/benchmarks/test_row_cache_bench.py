"""`make bench-rowcache`, tiny: both caches measured in one run by the same Go client."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks import row_cache

pytestmark = pytest.mark.integration


def test_per_row_caching_sends_only_unseen_rows_where_whole_request_caching_sends_all(
    tmp_path, model_repository, monkeypatch
):
    binary = tmp_path / "row-load"
    subprocess.run(
        ["bash", "gateway-grpc/build.sh", sys.executable, str(binary), "benchmarks/row_load"],
        check=True,
        capture_output=True,
    )
    monkeypatch.setattr(row_cache, "ROW_LOAD", binary)
    load = row_cache.Load(batch=4, pool=8, concurrency=2, seconds=1.0, shares=(0.0, 0.75))
    rows = row_cache.run(model_repository, tmp_path / "work", load)
    per_request = {(r["model"], r["seen_share"]): r["rows_to_triton"] / r["requests"] for r in rows}
    assert per_request[(row_cache.PER_ROW, 0.75)] == 1.0
    assert per_request[(row_cache.WHOLE, 0.75)] == 4.0
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in rows)
    assert "| 75% | per row |" in row_cache.markdown(rows, load)

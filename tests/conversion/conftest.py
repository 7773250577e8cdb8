"""Session fixtures: each demo model converted once, with reduced data, into a temporary repository.

The workdir is kept, so tests can look at every intermediate file (export, optimized, variants).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from rich.console import Console

from conversion import demo
from conversion.pipeline import Conversion, Report, convert

SMALL = demo.Sizes(
    digits_validation=270,
    digits_calibration=64,
    minilm_validation=96,
    minilm_calibration=32,
    bench_budget_s=0.05,
)


@dataclass
class Converted:
    conversion: Conversion
    report: Report
    repository: Path
    workdir: Path


def quiet_console() -> Console:
    return Console(stderr=True, quiet=True)


def convert_quietly(conversion: Conversion, root: Path) -> Converted:
    """Convert into `root/repo` with the workdir kept at `root/work`."""
    report = convert(conversion, root / "repo", quiet_console(), workdir=root / "work")
    return Converted(conversion, report, root / "repo", root / "work")


@pytest.fixture(scope="session")
def digits_conversion() -> Conversion:
    """The digits demo, serving every variant that passes the gate whatever its speed here: which
    INT8 model is faster than FP32 depends on the CPU (on an AVX2-only one static INT8 is ~1.3x,
    at the serving margin), so tests of what a served variant looks like would otherwise come and
    go with the machine. Serving by speed is tested with set latencies (test_pipeline, test_latency).
    """
    return tuned(demo.digits_conversion(SMALL), latency={"serve_slower": True})


@pytest.fixture(scope="session")
def digits_converted(tmp_path_factory, digits_conversion) -> Converted:
    return convert_quietly(digits_conversion, tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def minilm_conversion() -> Conversion:
    return demo.minilm_conversion(SMALL)


@pytest.fixture(scope="session")
def minilm_converted(tmp_path_factory, minilm_conversion) -> Converted:
    return convert_quietly(minilm_conversion, tmp_path_factory.mktemp("minilm"))


def tuned(conversion: Conversion, **groups: dict) -> Conversion:
    """`conversion` with some settings changed: tuned(c, quantization={"variants": ("fp16",)})."""
    settings = conversion.settings
    for group, changes in groups.items():
        settings = replace(settings, **{group: replace(getattr(settings, group), **changes)})
    return replace(conversion, settings=settings)

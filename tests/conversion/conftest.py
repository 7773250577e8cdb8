"""Session fixtures: each demo model converted once, with reduced data, into a temporary repository.

The workdir is kept, so tests can look at every intermediate file (export, optimized, variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from conversion import demo
from conversion.pipeline import Job, Report, convert

SMALL = demo.Sizes(
    digits_validation=270,
    digits_calibration=64,
    minilm_validation=96,
    minilm_calibration=32,
    bench_budget_s=0.05,
)


@dataclass
class Converted:
    job: Job
    report: Report
    repository: Path
    workdir: Path


def quiet_console() -> Console:
    return Console(stderr=True, quiet=True)


@pytest.fixture(scope="session")
def digits_job() -> Job:
    return demo.digits_job(SMALL)


@pytest.fixture(scope="session")
def digits_converted(tmp_path_factory, digits_job) -> Converted:
    root = tmp_path_factory.mktemp("digits")
    report = convert(digits_job, root / "repo", quiet_console(), workdir=root / "work")
    return Converted(digits_job, report, root / "repo", root / "work")


@pytest.fixture(scope="session")
def minilm_job() -> Job:
    return demo.minilm_job(SMALL)


@pytest.fixture(scope="session")
def minilm_converted(tmp_path_factory, minilm_job) -> Converted:
    root = tmp_path_factory.mktemp("minilm")
    report = convert(minilm_job, root / "repo", quiet_console(), workdir=root / "work")
    report.served.extend(demo.write_text_models(root / "repo", "minilm"))
    return Converted(minilm_job, report, root / "repo", root / "work")

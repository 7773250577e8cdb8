"""One tritonserver for a whole tuning search: trial models loaded one at a time, measured with
perf_analyzer at the target concurrency, early-stopped by a short probe, unloaded.

The server runs in explicit model-control mode (`localstack.tritonserver`); a trial's model is
written into its repository as the twin `make up` would serve (`benchmarks.sweep.write_point`,
`localstack.tritonserver.derive_model`) with the served queue policy, so a request queued past its
timeout fails the trial as it would fail in production, then loaded and unloaded through
Triton's repository API (POST /v2/repository/models/<name>/load|unload, tritonclient.http). For
a text model each trial also gets its own copy of the text ensemble whose encoder step is the
trial's model, so the measured path is the served one: tokenizer + encoder, from unique short
sentences of mixed length (`benchmarks.payloads.short_sentences`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

from benchmarks import payloads, perf
from benchmarks import sweep as bt
from benchmarks.sweep import ConfigPoint
from benchmarks.tuning import Limits, Target, Trial
from conversion.triton_config import read_config, write_config
from localstack.probes import http_ok
from localstack.processes import wait_until
from localstack.tritonserver import derive_model

DATA_ROWS = 512  # distinct requests perf_analyzer cycles through (no cache can answer from memory)


@dataclass(frozen=True)
class Measurement:
    """How a trial is measured: perf_analyzer windows (ms) of the probe and of the full measurement,
    windows per measurement (`trials`, perf_analyzer -r) and the clients' concurrency. A window
    that saw no answer (a slow model) is run again longer (`benchmarks.perf.run`)."""

    concurrency: int = 32
    window_ms: int = 1500
    probe_window_ms: int = 500
    trials: int = 3


def ensemble_config(canonical: Path, target: Target, point: ConfigPoint, name: str):
    """The entry ensemble's config named `name`, its encoder step pointed at `point`'s model (no
    larger a max_batch_size than that model's: Triton refuses an ensemble that allows more)."""
    config = read_config(canonical / target.entry / "config.pbtxt")
    config.name = name
    for step in config.ensemble_scheduling.step:
        if step.model_name == target.encoder_step:
            step.model_name = point.name
    config.max_batch_size = min(config.max_batch_size, point.max_batch_size)
    return config


def request_rows(canonical: Path, target: Target) -> list[dict]:
    """perf_analyzer --input-data rows: unique short sentences for a text entry, else the rows of
    the conversion's calibration set (`<model>/calibration.npz`, arrays '<batch>/<input>')."""
    if target.ensemble:
        sentences = payloads.short_sentences(DATA_ROWS)
        return [{"text": {"content": [s], "shape": [1]}} for s in sentences]
    path = canonical / target.model / "calibration.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: no request data for '{target.model}'")
    arrays = np.load(path)
    batches: dict[str, dict[str, np.ndarray]] = {}
    for key in arrays.files:
        batch, name = key.split("/", 1)
        batches.setdefault(batch, {})[name] = arrays[key]
    rows = []
    for batch in batches.values():
        first = next(iter(batch.values()))
        for r in range(first.shape[0]):
            rows.append(
                {
                    n: {"content": a[r].ravel().tolist(), "shape": list(a[r].shape)}
                    for n, a in batch.items()
                }
            )
    return rows[:DATA_ROWS]


class TrialServer:
    """The tritonserver of one search; `measure(point)` gives one Trial. Use as a context manager."""

    def __init__(self, canonical: Path, work: Path, target: Target, how: Measurement) -> None:
        self.canonical, self.work, self.target, self.how = canonical, work, target, how
        self.staging, self.repository = work / "canonical", work / "repository"
        for folder in (self.staging, self.repository):
            folder.mkdir(parents=True, exist_ok=True)
        self.data = perf.write_input_data(work / "requests.json", request_rows(canonical, target))
        self.server: bt.TritonServer | None = None
        self.client: httpclient.InferenceServerClient | None = None

    def start(self, first: ConfigPoint) -> None:
        """Start the server with `first` (and the tokenizer of a text model) loaded."""
        if self.target.tokenizer:
            derive_model(
                self.canonical / self.target.tokenizer, self.repository / self.target.tokenizer
            )
        self._write(first)
        self.server = bt.TritonServer(self.work / "run", self.repository)
        self.server.start()
        self.client = httpclient.InferenceServerClient(
            f"127.0.0.1:{self.server.http_port}", network_timeout=600, connection_timeout=60
        )

    def stop(self) -> None:
        if self.client:
            self.client.close()
        if self.server:
            self.server.stop()

    def __enter__(self) -> TrialServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _entry_name(self, point: ConfigPoint) -> str:
        return f"{point.name}__text" if self.target.ensemble else point.name

    def _write(self, point: ConfigPoint) -> None:
        bt.write_point(self.canonical, self.staging, point, served_queue=True)
        derive_model(self.staging / point.name, self.repository / point.name)
        if self.target.ensemble:
            name = self._entry_name(point)
            config = ensemble_config(self.canonical, self.target, point, name)
            write_config(config, self.repository / name / "config.pbtxt")
            (self.repository / name / "1").mkdir(exist_ok=True)

    def _load(self, point: ConfigPoint) -> None:
        if not self.client.is_model_ready(self._entry_name(point)):
            self._write(point)
            self.client.load_model(point.name)
            if self.target.ensemble:
                self.client.load_model(self._entry_name(point))

    def _unload(self, point: ConfigPoint) -> None:
        names = [self._entry_name(point), point.name] if self.target.ensemble else [point.name]
        for name in names:
            self.client.unload_model(name)
        ready = f"http://127.0.0.1:{self.server.http_port}/v2/models/{point.name}/ready"
        wait_until(lambda: not http_ok(ready), 60, 0.2)

    def _perf(self, point: ConfigPoint, window_ms: int) -> perf.PerfResult:
        return perf.run(
            self._entry_name(point),
            self.server.grpc_url,
            self.how.concurrency,
            self.data,
            window_ms,
            self.how.trials,
            work_dir=self.work / "perf",
        )

    def measure(self, index: int, stage: str, point: ConfigPoint, limits: Limits) -> Trial:
        """Probe, then (unless `limits` stop it) measure `point`; errors become the Trial's `error`."""
        started = time.perf_counter()
        trial = Trial(index, stage, point)
        try:
            self._load(point)
            probe = self._perf(point, self.how.probe_window_ms)
            trial.stopped = stop_reason(probe, limits)
            before = bt.scrape_counts(self.server.metrics_url)
            result = probe if trial.stopped else self._perf(point, self.how.window_ms)
            trial.avg_batch = bt.average_batch(
                before, bt.scrape_counts(self.server.metrics_url), point.name
            )
            trial.throughput, trial.p50_ms, trial.p99_ms = (
                result.throughput,
                result.p50_ms,
                result.p99_ms,
            )
        except (perf.PerfAnalyzerError, httpclient.InferenceServerException, OSError) as error:
            trial.error = str(error)[:300]
        finally:
            self._unload_quietly(point)
        trial.seconds = time.perf_counter() - started
        return trial

    def _unload_quietly(self, point: ConfigPoint) -> None:
        with contextlib.suppress(httpclient.InferenceServerException):
            self._unload(point)  # a model that failed to load has nothing to unload


def stop_reason(probe: perf.PerfResult, limits: Limits) -> str:
    """Why a probe ends its trial ('' when it goes on to the full measurement)."""
    if probe.p99_ms > limits.p99_ms:
        return f"probe p99 {probe.p99_ms:.1f} ms > {limits.p99_ms:.1f} ms: cannot win"
    if probe.throughput < limits.throughput:
        return f"probe {probe.throughput:.0f}/s < {limits.throughput:.0f}/s: cannot win"
    return ""

"""Gateway memory during a load test: RSS sampling (the process and its children), the CSV, the plot,
and the soak verdict (zero failed requests, RSS steady over the part of the run after warm-up)."""

from __future__ import annotations

import csv
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

try:
    import psutil
except ImportError:  # /proc fallback
    psutil = None

CSV_FIELDS = ["elapsed_s", "unix_time", "rss_mb", "processes"]
MB = 1024 * 1024


# ------------------------------------------------------------------ sampling
def _proc_children(pid: int) -> list[int]:
    """Descendants of pid, from /proc/<n>/stat (ppid is field 4, after the parenthesised name)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _proc_rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0  # a zombie has no VmRSS line


def rss_bytes(pid: int, children: bool = True) -> tuple[int, int] | None:
    """(RSS in bytes, number of processes) of pid plus, with children, its descendants (uvicorn
    workers when the gateway runs with workers > 1); None once pid is gone."""
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *(root.children(recursive=True) if children else [])]
            total, count = 0, 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                    count += 1
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    if proc is root:
                        return None
            return total, count
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
    root_rss = _proc_rss(pid)
    if root_rss is None:
        return None
    total, count = root_rss, 1
    for child in _proc_children(pid) if children else []:
        rss = _proc_rss(child)
        if rss is not None:
            total, count = total + rss, count + 1
    return total, count


@dataclass
class Sample:
    elapsed_s: float
    rss_mb: float
    unix_time: float = 0.0
    processes: int = 1


class RssSampler:
    """A daemon thread that appends one CSV row every interval_s (flushed, so a killed run keeps
    what it had): `with RssSampler(pid, out / "gateway_rss.csv"): ...`."""

    def __init__(
        self, pid: int, path: Path, interval_s: float = 2.0, children: bool = True
    ) -> None:
        self.pid, self.path, self.interval_s, self.children = pid, path, interval_s, children
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)
        return self.samples

    def _loop(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            while True:
                measured = rss_bytes(self.pid, self.children)
                if measured is None:  # the gateway is gone
                    return
                sample = Sample(
                    round(time.monotonic() - self._t0, 2),
                    round(measured[0] / MB, 2),
                    round(time.time(), 2),
                    measured[1],
                )
                self.samples.append(sample)
                writer.writerow(
                    [sample.elapsed_s, sample.unix_time, sample.rss_mb, sample.processes]
                )
                handle.flush()
                if self._stop.wait(self.interval_s):
                    return


def load_samples(path: Path) -> list[Sample]:
    with path.open() as handle:
        return [
            Sample(
                float(row["elapsed_s"]),
                float(row["rss_mb"]),
                float(row["unix_time"]),
                int(row["processes"]),
            )
            for row in csv.DictReader(handle)
        ]


# ------------------------------------------------------------------ verdict
@dataclass
class RssGrowth:
    start_mb: float
    end_mb: float
    max_mb: float
    window_start_mb: float  # at the start of the judged part (after warm-up)
    window_end_mb: float
    growth_mb: float
    growth_pct: float
    window_from_s: float
    samples: int


def rss_growth(samples: list[Sample], warmup_fraction: float = 0.5) -> RssGrowth | None:
    """Growth over the part of the run after warm-up (by default its second half): the median of
    the last few samples minus the median of the first few of that part (medians, so one noisy
    sample neither hides nor fakes a trend)."""
    if not samples:
        return None
    t0, t1 = samples[0].elapsed_s, samples[-1].elapsed_s
    cut = t0 + warmup_fraction * (t1 - t0)
    window = [s for s in samples if s.elapsed_s >= cut] or samples[-1:]
    k = max(1, min(3, len(window) // 3))
    first = statistics.median(s.rss_mb for s in window[:k])
    last = statistics.median(s.rss_mb for s in window[-k:])
    growth = last - first
    return RssGrowth(
        start_mb=samples[0].rss_mb,
        end_mb=samples[-1].rss_mb,
        max_mb=max(s.rss_mb for s in samples),
        window_start_mb=round(first, 2),
        window_end_mb=round(last, 2),
        growth_mb=round(growth, 2),
        growth_pct=round(100 * growth / first, 2) if first else 0.0,
        window_from_s=round(cut, 2),
        samples=len(samples),
    )


@dataclass
class SoakLimits:
    max_growth_pct: float = 10.0  # < 0: not checked
    max_growth_mb: float = 20.0  # < 0: not checked
    warmup_fraction: float = 0.5


@dataclass
class SoakVerdict:
    passed: bool
    broken: list[str] = field(default_factory=list)
    growth: RssGrowth | None = None


def soak_verdict(
    samples: list[Sample], requests: int, failures: int, limits: SoakLimits | None = None
) -> SoakVerdict:
    """Zero failed requests (not an error rate), at least one request, RSS samples, and growth after
    warm-up within both limits (more than max_growth_pct % or more than max_growth_mb MB fails)."""
    limits = limits or SoakLimits()
    broken = []
    if requests <= 0:
        broken.append("no request completed")
    if failures > 0:
        broken.append(f"{failures} failed request(s) (a soak allows none)")
    growth = rss_growth(samples, limits.warmup_fraction)
    if growth is None:
        broken.append("no gateway RSS samples (give --gateway-pid with --host)")
    else:
        if 0 <= limits.max_growth_pct < growth.growth_pct:
            broken.append(
                f"gateway RSS grew {growth.growth_pct:.1f} % > {limits.max_growth_pct:g} % "
                f"after warm-up ({growth.window_start_mb:.1f} -> {growth.window_end_mb:.1f} MB)"
            )
        if 0 <= limits.max_growth_mb < growth.growth_mb:
            broken.append(
                f"gateway RSS grew {growth.growth_mb:.1f} MB > {limits.max_growth_mb:g} MB "
                f"after warm-up ({growth.window_start_mb:.1f} -> {growth.window_end_mb:.1f} MB)"
            )
    return SoakVerdict(passed=not broken, broken=broken, growth=growth)


# ------------------------------------------------------------------ plot
def plot_rss(
    samples: list[Sample], path: Path, warmup_fraction: float = 0.5, title: str = "gateway RSS"
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs = [s.elapsed_s for s in samples]
    ax.plot(
        xs, [s.rss_mb for s in samples], marker=".", linewidth=1.2, label="RSS (process + children)"
    )
    if len(samples) > 1:
        cut = xs[0] + warmup_fraction * (xs[-1] - xs[0])
        ax.axvspan(xs[0], cut, color="0.9", label="warm-up (not judged)")
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(title)
    ax.set_ylim(0, max(s.rss_mb for s in samples) * 1.2 if samples else None)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

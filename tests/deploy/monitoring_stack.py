"""A real Prometheus (and redis_exporter) started on free ports in a temp dir, for the dashboard test.

Both processes are started by the test and always stopped by it (terminate, then kill)."""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

from localstack.processes import wait_until

from .conftest import find_tool, free_port


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def redis_exporter(redis_url: str, workdir: Path) -> Iterator[str]:
    """Start prometheus-redis-exporter against `redis_url`; yield its host:port."""
    u = urlsplit(redis_url)
    port = free_port()
    cmd = [
        find_tool("prometheus-redis-exporter"),
        "-redis.addr",
        f"redis://{u.hostname}:{u.port or 6379}",
        "-web.listen-address",
        f"127.0.0.1:{port}",
    ]
    if u.password:
        cmd += ["-redis.password", u.password]
    log = workdir / "redis-exporter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", 20, proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


def _target(url: str) -> dict:
    u = urlsplit(url)
    return {"metrics_path": u.path or "/metrics", "static_configs": [{"targets": [u.netloc]}]}


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def query(self, expr: str) -> list[dict]:
        r = httpx.get(f"{self.base_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"query failed ({r.status_code}): {expr}\n{body}")
        return body["data"]["result"]

    def finite_values(self, expr: str) -> list[float]:
        values = []
        for series in self.query(expr):
            v = float(series["value"][1]) if "value" in series else float(series["values"][-1][1])
            if math.isfinite(v):
                values.append(v)
        return values

    def targets(self) -> dict[str, str]:
        r = httpx.get(f"{self.base_url}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] for t in r["data"]["activeTargets"]}

    def scrapes(self) -> dict[str, float]:
        """How many times Prometheus has scraped each job so far (its `up` samples)."""
        series = self.query("count_over_time(up[1h])")
        return {s["metric"]["job"]: float(s["value"][1]) for s in series}

    def wait_scrapes(self, n: int, timeout_s: float = 60.0) -> None:
        """Wait until every job was scraped `n` more times (a busy machine scrapes late)."""
        before = self.scrapes()
        if not wait_until(
            lambda: all(self.scrapes().get(j, 0) >= c + n for j, c in before.items()), timeout_s
        ):
            raise TimeoutError(f"fewer than {n} scrapes of each job in {timeout_s} s: {before}")


@contextlib.contextmanager
def prometheus(
    jobs: dict[str, str], workdir: Path, scrape_interval_s: int = 1
) -> Iterator[Prometheus]:
    """Start Prometheus scraping `jobs` ({job name: metrics URL}) every `scrape_interval_s`."""
    config = {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "evaluation_interval": f"{scrape_interval_s}s",
        },
        "scrape_configs": [{"job_name": job, **_target(url)} for job, url in jobs.items()],
    }
    cfg = workdir / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    cmd = [
        find_tool("prometheus"),
        f"--config.file={cfg}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_http(f"http://127.0.0.1:{port}/-/ready", 60, proc, log)
        prom = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while set(prom.targets().values()) != {"up"} or set(prom.targets()) != set(jobs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"targets not up: {prom.targets()}\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield prom
    finally:
        _stop(proc)

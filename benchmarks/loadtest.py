"""`make loadtest`: Locust headless for a bounded time against the gateway (a fresh local stack on
free ports unless --host is given): CSV, HTML, JSON (final stats and the SLO verdict); the exit
code is Locust's, which the locustfile sets to 1 when p99 or the error rate breaks the SLO.

Whenever the gateway's pid is known (the local stack, or --gateway-pid) its RSS (children included)
is sampled into gateway_rss.csv and plotted (gateway_rss.png), with a Markdown summary (summary.md).
`make soak` (soak=True) adds its own verdict on top of the SLO: zero failed requests and RSS steady
after warm-up (benchmarks.memory.soak_verdict); it is written to soak.json and decides the exit code
together with Locust's."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from benchmarks import memory

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
# Locust runs from its own venv (`make loadtest` creates it from loadtests/requirements.txt): a current
# Locust needs a newer geventhttpclient than tritonclient[http] in the project's venv allows.
PYTHON = Path(__file__).resolve().parent.parent / ".venv-loadtest" / "bin" / "python"
# `locust` that leaves as soon as its reports are written (see loadtests/run_locust.py)
LOCUST = LOCUSTFILE.with_name("run_locust.py")
console = Console(stderr=True)


def locust_command(
    host: str, users: int, spawn_rate: float, run_time: str, classes: list[str], out: Path
) -> list[str]:
    return [
        str(PYTHON),
        str(LOCUST),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        run_time,
        "--stop-timeout",
        "5",
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--json",
        "--only-summary",
        "--skip-log-setup",
        *classes,
    ]


def run(
    host: str,
    grpc_host: str,
    users: int,
    spawn_rate: float,
    run_time: str,
    classes: list[str],
    model: str,
    slo_p99_ms: float,
    slo_error_rate: float,
    out: Path,
    repository: Path,
    gateway_pid: int | None = None,
    rss_interval_s: float = 2.0,
    soak: bool = False,
    limits: memory.SoakLimits | None = None,
) -> int:
    if not PYTHON.exists():
        raise SystemExit(f"{PYTHON} not found: `make loadtest` creates .venv-loadtest")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or memory.SoakLimits()
    stack = None
    if not host:
        from benchmarks import sweep as bt
        from localstack.stack import LocalStack, StackPorts

        repo = bt.write_canonical_variant(
            repository.resolve(), out / "stack-repo", {}, keep=[model]
        )
        stack = LocalStack(out / "stack", repo, StackPorts.free())
        console.log("starting a local stack (redis, tritonserver, gateway) on free ports")
        stack.start()
        host = f"http://127.0.0.1:{stack.ports.gateway_http}"
        grpc_host = grpc_host or f"127.0.0.1:{stack.ports.gateway_grpc}"
        gateway_pid = gateway_pid or stack.processes.pid("gateway")
    grpc_classes = [c for c in classes if "Grpc" in c]
    if grpc_classes and not _grpc_live(grpc_host):
        console.log(
            f"[yellow]no KServe v2 gRPC at {grpc_host} (gateway gRPC not available): "
            f"skipping {', '.join(grpc_classes)}[/yellow]"
        )
        classes = [c for c in classes if c not in grpc_classes]
    env = {
        **os.environ,
        "LOCUST_MODEL": model,
        "LOCUST_SLO_P99_MS": str(slo_p99_ms),
        "LOCUST_SLO_ERROR_RATE": str(slo_error_rate),
        "LOCUST_SUMMARY_JSON": str(out / "slo.json"),
    }
    if grpc_host:
        env["LOCUST_GRPC_HOST"] = grpc_host
    sampler = None
    if gateway_pid:
        sampler = memory.RssSampler(gateway_pid, out / "gateway_rss.csv", rss_interval_s)
        console.log(
            f"sampling the gateway's RSS (pid {gateway_pid} and children) every "
            f"{rss_interval_s:g} s -> gateway_rss.csv"
        )
    else:
        console.log(
            "[yellow]gateway pid unknown (--host without --gateway-pid): no RSS samples[/yellow]"
        )
    try:
        command = locust_command(host, users, spawn_rate, run_time, classes, out)
        console.log(" ".join(["locust", *command[2:]]))
        if sampler:
            sampler.start()
        try:
            done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
        finally:
            samples = sampler.stop() if sampler else []
        (out / "locust.json").write_text(done.stdout)
    finally:
        if stack is not None:
            stack.stop()
    verdict = json.loads((out / "slo.json").read_text()) if (out / "slo.json").exists() else {}
    totals = aggregated_stats(out / "locust_stats.csv")
    if samples:
        memory.plot_rss(
            samples,
            out / "gateway_rss.png",
            limits.warmup_fraction,
            f"gateway RSS, {', '.join(classes)}, {users} users, {run_time}",
        )
    code = done.returncode
    soak_result = None
    if soak:
        soak_result = memory.soak_verdict(
            samples,
            int(totals.get("requests", verdict.get("requests", 0))),
            int(totals.get("failures", verdict.get("failures", 1))),
            limits,
        )
        (out / "soak.json").write_text(
            json.dumps(
                {
                    "passed": soak_result.passed,
                    "broken": soak_result.broken,
                    "growth": asdict(soak_result.growth) if soak_result.growth else None,
                    "limits": asdict(limits),
                    "locust_exit_code": done.returncode,
                },
                indent=2,
            )
        )
        code = code or (0 if soak_result.passed else 1)
    summary = {
        "exit_code": code,
        "locust_exit_code": done.returncode,
        "host": host,
        "grpc_host": grpc_host,
        "classes": classes,
        "users": users,
        "run_time": run_time,
        "gateway_pid": gateway_pid,
        **verdict,
        "rss": asdict(memory.rss_growth(samples, limits.warmup_fraction)) if samples else None,
    }
    if soak_result is not None:
        summary["soak"] = {"passed": soak_result.passed, "broken": soak_result.broken}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(summary_markdown(summary, totals, samples, soak_result, limits))
    if soak_result is not None:
        state = "[green]soak passed[/green]" if code == 0 else "[red]soak failed[/red]"
        reasons = soak_result.broken + verdict.get("broken", [])
        growth = soak_result.growth
        detail = "; ".join(reasons) or (
            f"0 failures, RSS {growth.window_start_mb:.1f} -> "
            f"{growth.window_end_mb:.1f} MB after warm-up"
        )
        console.log(f"{state}: {detail} -> {out}")
    else:
        state = "[green]SLO met[/green]" if code == 0 else "[red]SLO broken[/red]"
        console.log(
            f"{state}: {', '.join(verdict.get('broken', [])) or 'p99 ' + str(verdict.get('p99_ms'))}"
            f" -> {out}"
        )
    return code


def aggregated_stats(path: Path) -> dict:
    """The 'Aggregated' row of locust_stats.csv: requests, failures, rps, p50/p95/p99 (ms)."""
    if not path.exists():
        return {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":

                def num(key: str, row: dict = row) -> float | None:
                    value = row.get(key, "N/A")
                    return None if value in ("N/A", "", None) else float(value)

                return {
                    "requests": int(num("Request Count") or 0),
                    "failures": int(num("Failure Count") or 0),
                    "rps": num("Requests/s"),
                    "p50_ms": num("50%"),
                    "p95_ms": num("95%"),
                    "p99_ms": num("99%"),
                    "max_ms": num("Max Response Time"),
                }
    return {}


def summary_markdown(
    summary: dict,
    totals: dict,
    samples: list[memory.Sample],
    soak_result: memory.SoakVerdict | None,
    limits: memory.SoakLimits,
) -> str:
    def fmt(value, unit="") -> str:
        return (
            "n/a"
            if value is None
            else f"{value:,.1f}{unit}"
            if isinstance(value, float)
            else f"{value}{unit}"
        )

    kind = "Soak" if soak_result is not None else "Load test"
    if soak_result is not None:
        verdict = "PASSED" if summary["exit_code"] == 0 else "FAILED"
    else:
        verdict = "SLO met" if summary["exit_code"] == 0 else "SLO broken"
    lines = [
        f"# {kind}: {verdict}",
        "",
        (
            f"{', '.join(summary['classes'])}, {summary['users']} users, {summary['run_time']} "
            f"against {summary['host']}."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| requests | {fmt(totals.get('requests', summary.get('requests')))} |",
        f"| failures | {fmt(totals.get('failures', summary.get('failures')))} |",
        f"| throughput | {fmt(totals.get('rps'), ' req/s')} |",
        f"| p50 | {fmt(totals.get('p50_ms'), ' ms')} |",
        f"| p99 | {fmt(totals.get('p99_ms', summary.get('p99_ms')), ' ms')} |",
    ]
    growth = memory.rss_growth(samples, limits.warmup_fraction)
    if growth:
        lines += [
            (
                f"| gateway RSS start / end / max | {growth.start_mb:.1f} / {growth.end_mb:.1f} / "
                f"{growth.max_mb:.1f} MB ({samples[-1].processes} process(es), "
                f"{growth.samples} samples) |"
            ),
            (
                f"| RSS growth after warm-up (from {growth.window_from_s:.0f} s) | "
                f"{growth.growth_mb:+.2f} MB ({growth.growth_pct:+.2f} %): "
                f"{growth.window_start_mb:.1f} -> {growth.window_end_mb:.1f} MB |"
            ),
        ]
    else:
        lines.append("| gateway RSS | not sampled (pid unknown) |")
    lines.append("")
    if soak_result is not None:
        lines.append(
            f"Soak limits: zero failed requests; RSS growth after the first "
            f"{limits.warmup_fraction:.0%} of the run at most {limits.max_growth_pct:g} % and "
            f"{limits.max_growth_mb:g} MB (a negative limit is not checked); plus the SLO."
        )
        lines.append("")
    broken = (soak_result.broken if soak_result else []) + summary.get("broken", [])
    lines += [f"- broken: {reason}" for reason in broken] or ["- nothing broken"]
    lines.append("")
    if growth:
        lines += ["![gateway RSS over time](gateway_rss.png)", ""]
    lines.append(
        "Files: gateway_rss.csv, gateway_rss.png, locust_stats.csv, locust_stats_history.csv, "
        "locust_failures.csv, locust.html, locust.json, slo.json, summary.json"
        + (", soak.json" if soak_result is not None else "")
        + "."
    )
    return "\n".join(lines) + "\n"


def _grpc_live(target: str) -> bool:
    from benchmarks.suite import _grpc_live as live

    return bool(target) and live(target)

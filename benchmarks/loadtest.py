"""`make loadtest`: Locust headless for a bounded time against the gateway (a fresh local stack on
free ports unless --host is given): CSV, HTML, JSON (final stats and the SLO verdict); the exit
code is Locust's, which the locustfile sets to 1 when p99 or the error rate breaks the SLO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
console = Console(stderr=True)


def locust_command(host: str, users: int, spawn_rate: float, run_time: str, classes: list[str],
                   out: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "-u", str(users), "-r", str(spawn_rate), "-t", run_time, "--stop-timeout", "5",
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--json",
        "--only-summary", "--skip-log-setup", *classes,
    ]


def run(host: str, grpc_host: str, users: int, spawn_rate: float, run_time: str,
        classes: list[str], model: str, slo_p99_ms: float, slo_error_rate: float, out: Path,
        repository: Path) -> int:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stack = None
    if not host:
        from benchmarks import triton as bt
        from localstack.stack import LocalStack, StackPorts

        repo = bt.write_canonical_variant(repository.resolve(), out / "stack-repo", {}, keep=[model])
        stack = LocalStack(out / "stack", repo, StackPorts.free())
        console.log("starting a local stack (redis, tritonserver, gateway) on free ports")
        stack.start()
        host = f"http://127.0.0.1:{stack.ports.gateway_http}"
        grpc_host = grpc_host or f"127.0.0.1:{stack.ports.gateway_grpc}"
    grpc_classes = [c for c in classes if "Grpc" in c]
    if grpc_classes and not _grpc_live(grpc_host):
        console.log(f"[yellow]no KServe v2 gRPC at {grpc_host} (gateway gRPC not available): "
                    f"skipping {', '.join(grpc_classes)}[/yellow]")
        classes = [c for c in classes if c not in grpc_classes]
    env = {**os.environ, "LOCUST_MODEL": model, "LOCUST_SLO_P99_MS": str(slo_p99_ms),
           "LOCUST_SLO_ERROR_RATE": str(slo_error_rate),
           "LOCUST_SUMMARY_JSON": str(out / "slo.json")}
    if grpc_host:
        env["LOCUST_GRPC_HOST"] = grpc_host
    try:
        command = locust_command(host, users, spawn_rate, run_time, classes, out)
        console.log(" ".join(command[2:]))
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
        (out / "locust.json").write_text(done.stdout)
    finally:
        if stack is not None:
            stack.stop()
    verdict = json.loads((out / "slo.json").read_text()) if (out / "slo.json").exists() else {}
    summary = {"exit_code": done.returncode, "host": host, "grpc_host": grpc_host,
               "classes": classes, "users": users, "run_time": run_time, **verdict}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    state = "[green]SLO met[/green]" if done.returncode == 0 else "[red]SLO broken[/red]"
    console.log(f"{state}: {', '.join(verdict.get('broken', [])) or 'p99 ' + str(verdict.get('p99_ms'))}"
                f" -> {out}")
    return done.returncode


def _grpc_live(target: str) -> bool:
    from benchmarks.suite import _grpc_live as live

    return bool(target) and live(target)

"""The conversion report printed at the end: fusions, variants, gate verdicts, latency."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from conversion.pipeline import Report


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def print_report(report: Report, console: Console) -> None:
    if not console.is_terminal and console.width < 150:
        console.width = 150  # logs and CI: keep the table on one line per variant
    opt = report.optimization.as_dict()
    fusions = ", ".join(f"{op} x{n}" for op, n in opt["fusions"].items()) or "none"
    console.print(
        f"[bold]{report.name}[/]: graph {opt['nodes_before']} -> {opt['nodes_after']} nodes; fusions: {fusions}"
    )
    if report.export_max_deviation is not None:
        console.print(f"  export: max |onnxruntime - pytorch| = {report.export_max_deviation:.3g}")
    table = Table(title=f"{report.name} variants (validation set, vs FP32)")
    for column in (
        "variant",
        "served as",
        "MB",
        "metric",
        "max dev",
        "ms b1",
        "ms b8",
        "ms b32",
        "gate",
    ):
        table.add_column(column)
    for kind, result in report.results.items():
        info = result.as_dict()
        m = info["metrics"]
        if "accuracy" in m:
            metric = f"acc {m['accuracy']:.4f}"
        elif "mean_cosine" in m:
            metric = f"cos {m['mean_cosine']:.4f}/{m['min_cosine']:.3f} rank {m.get('ranking_agreement', 1):.3f}"
        elif "top1_agreement" in m:
            metric = f"agree {m['top1_agreement']:.4f}"
        else:
            metric = ""
        lat = info["latency_ms"]
        verdict = "[green]pass" if info["passed"] else "[red]REJECT: " + "; ".join(info["reasons"])
        table.add_row(
            kind,
            info["served_as"] or "-",
            _fmt(info["size_bytes"] / 1e6 if info["size_bytes"] else None, 1),
            metric,
            _fmt(m.get("max_abs_deviation"), 3),
            *(_fmt(lat.get(b), 2) for b in ("1", "8", "32")),
            verdict,
        )
    console.print(table)
    tried = any(k.startswith("int8") for k in report.results)
    int8 = report.int8_selected or ("none passed the gate" if tried else "not requested")
    console.print(
        f"  int8 served: {int8}; "
        f"served models: {', '.join(report.served)}; manifest: {report.manifest}"
    )
    for step, reason in report.skipped.items():
        console.print(f"  [yellow]{step} skipped[/]: {reason}")

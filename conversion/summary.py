"""The conversion report printed at the end: export checks, fusions, and one row per variant with
each output's metric and absolute value, latency, gate verdict and what is served."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conversion.gate import headline
from conversion.pipeline import Report, VariantResult


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _quality(result: VariantResult) -> str:
    """`logits: acc 98.89% (+0.00)` per output; the FP32 row is measured against PyTorch."""
    if result.verdict is None:
        return ""
    against = f" vs {result.verdict.reference}" if result.kind == "fp32" else ""
    return "\n".join(f"{o}: {headline(v)}{against}" for o, v in result.verdict.metrics.items())


def _verdict(result: VariantResult) -> str:
    info = result.as_dict()
    if not info["passed"]:
        return "[red]REJECT: " + escape("; ".join(info["reasons"]))
    if result.not_served:
        return f"[yellow]pass, not served: {escape(result.not_served)}"
    return "[green]pass"


def _names(names: tuple[str, ...] | list[str], shown: int = 6) -> str:
    """At most `shown` names, then how many more (the manifest lists them all)."""
    more = len(names) - shown
    listed = ", ".join(names[:shown]) or "-"
    return f"{listed}, ... (+{more} more in the manifest)" if more > 0 else listed


def _export_lines(report: Report) -> list[str]:
    exported = report.exported
    lines = []
    if exported.max_deviation is not None:
        axes = ", ".join(f"{a}={n}" for a, n in exported.axes_proven.items()) or "none"
        lines.append(
            f"  export: max |onnxruntime - pytorch| = {exported.max_deviation:.3g}; "
            f"dynamic axes proven at a second size: {axes}"
        )
    lines += [f"  [yellow]tracer warning[/]: {escape(w)}" for w in exported.tracer_warnings]
    for search in report.searches:
        outcome = "passed" if search.path else "nothing passed"
        budget = ", budget ran out" if search.exhausted else ""
        lines.append(
            f"  {search.kind} search: {outcome} with {len(search.kept_fp32)} of "
            f"{len(search.sensitivity)} ranked layer(s) kept FP32 ({_names(search.kept_fp32)}); "
            f"{search.trials} models tried in {search.elapsed_s:.0f} s{budget}"
        )
    return lines


def _mixed_lines(report: Report) -> list[str]:
    """What an INT8 model found by the search keeps in FP32, and its speed against the fully
    quantized kind and FP32."""
    lines = []
    fp32 = report.results["fp32"].latency_ms
    for kind, result in report.results.items():
        if not kind.endswith("_mixed"):
            continue
        base = kind.removesuffix("_mixed")
        full = report.results[base].latency_ms
        cost = ", ".join(
            f"b{b} {ms:.2f} ms ({ms / full[b]:.2f}x {base}, {ms / fp32[b]:.2f}x fp32)"
            for b, ms in result.latency_ms.items()
            if b in full and b in fp32
        )
        lines.append(f"  {kind} keeps FP32: {_names(result.kept_fp32)}; speed: {cost}")
    return lines


def print_report(report: Report, console: Console) -> None:
    """Print the report of one conversion (widened to 150 columns off a terminal)."""
    if not console.is_terminal and console.width < 150:
        console.width = 150  # logs and CI: keep the table on one line per variant
    opt = report.optimization.as_dict()
    fusions = ", ".join(f"{op} x{n}" for op, n in opt["fusions"].items()) or "none"
    console.print(
        f"[bold]{report.name}[/]: graph {opt['nodes_before']} -> {opt['nodes_after']} nodes; "
        f"fusions: {fusions}"
    )
    for line in _export_lines(report):
        console.print(line)
    table = Table(title=f"{report.name} variants (validation set; FP32 vs PyTorch, others vs FP32)")
    for column in ("variant", "served as", "MB", "quality", "max dev", "ms b1", "ms b8", "ms b32"):
        table.add_column(column)
    table.add_column("gate", overflow="fold")
    for kind, result in report.results.items():
        info = result.as_dict()
        deviation = max((v["max_abs_deviation"] for v in info["metrics"].values()), default=None)
        lat = info["latency_ms"]
        table.add_row(
            kind,
            info["served_as"] or "-",
            _fmt(info["size_bytes"] / 1e6 if info["size_bytes"] else None, 1),
            _quality(result),
            _fmt(deviation, 3),
            *(f"{lat[b]:.3g}" if b in lat else "" for b in ("1", "8", "32")),
            _verdict(result),
        )
    console.print(table)
    for line in _mixed_lines(report):
        console.print(line)
    tried = any(k.startswith("int8") for k in report.results)
    int8 = report.int8_selected or ("none served" if tried else "not requested")
    console.print(
        f"  int8 served: {int8}; "
        f"served models: {', '.join(report.served)}; manifest: {report.manifest}"
    )
    for step, reason in report.skipped.items():
        console.print(f"  [yellow]{step} skipped[/]: {escape(reason)}")

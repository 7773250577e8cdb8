"""results.json -> report.md + PNG plots. Pure functions of the recorded results (tested on
small JSON fixtures), so a report can be re-rendered without measuring again."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SEED_CLAIMS = [
    ("FP16", "1.5-3x from FP16"),
    ("INT8", "2-4x from INT8"),
    ("graph optimization", "20-50% from graph optimization"),
    ("dynamic batching", "5-10x from batching"),
    ("cached answer latency", "sub-millisecond cached answers"),
    ("combined", "4x combined"),
]


def usd(value: float | None) -> str:
    """A cost in USD to two significant digits, never in exponent form (0.0000047), 'n/a' for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if not value:
        return "0"
    decimals = max(2, 1 - math.floor(math.log10(abs(value))))  # the second significant digit
    return f"{value:.{decimals}f}"


def fmt(value, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- sections
def baseline_markdown(results: dict) -> str:
    rows = []
    for r in results.get("baseline", []):
        n, o = r["naive"], r["optimized"]
        rows.append(
            [
                r["family"],
                r["scenario"],
                r["concurrency"],
                n.get("torch_threads", ""),
                f"{fmt(n['throughput'])} / {fmt(n['p50_ms'])} / {fmt(n['p99_ms'])}",
                f"{fmt(o['throughput'])} / {fmt(o['p50_ms'])} / {fmt(o['p99_ms'])}",
                f"**{ratio(r['throughput_ratio'])}**",
                ratio(r["p50_ratio"]),
                ratio(r["p99_ratio"]),
                fmt(o.get("avg_batch")),
                f"{o.get('cache_hits', 0)}/{o.get('requests', 0)}",
                f"{n.get('errors', 0)}/{o.get('errors', 0)}",
            ]
        )
    if not rows:
        return "_not measured in this run_"
    return table(
        [
            "model",
            "traffic",
            "conc.",
            "naive torch threads",
            "naive req/s / p50 / p99 ms",
            "optimized req/s / p50 / p99 ms",
            "throughput",
            "p50 ratio",
            "p99 ratio",
            "avg batch (Triton)",
            "cache hits",
            "errors naive/opt.",
        ],
        rows,
    )


def techniques_markdown(results: dict) -> str:
    rows = []
    for t in results.get("techniques", []):
        if t["technique"] == "cached answer latency":
            measured = (
                f"p50 {fmt(t['with_p50_ms'], 2)} ms hit vs {fmt(t['reference_p50_ms'], 2)} ms "
                f"miss (p99 hit {fmt(t['with_p99_ms'], 2)} ms)"
            )
        else:
            measured = (
                f"{fmt(t.get('reference_throughput'))} -> {fmt(t.get('with_throughput'))} req/s; "
                f"p99 {fmt(t.get('reference_p99_ms'))} -> {fmt(t.get('with_p99_ms'))} ms"
            )
            if t.get("avg_batch"):
                measured += f"; avg batch {fmt(t['avg_batch'])}"
        rows.append(
            [
                t["family"],
                t["technique"],
                t["reference"],
                t["with"],
                t["path"],
                f"**{ratio(t.get('gain'))}**",
                ratio(t.get("model_only_gain")),
                measured,
            ]
        )
    if not rows:
        return "_not measured in this run_"
    return table(
        [
            "model",
            "technique (alone)",
            "reference",
            "switched on",
            "path",
            "served gain",
            "model-only gain (ORT, batch 32)",
            "numbers",
        ],
        rows,
    )


def seed_claims_markdown(results: dict) -> str:
    hw = results.get("meta", {}).get("hardware", {}).get("description", "this machine")
    rows = []
    for technique, claim in SEED_CLAIMS:
        measured = []
        if technique == "combined":
            for r in results.get("baseline", []):
                measured.append(
                    f"{r['family']} ({r['scenario'].split(' (')[0]}, c{r['concurrency']}): "
                    f"{ratio(r['throughput_ratio'])} throughput, p99 {ratio(r['p99_ratio'])}"
                )
        else:
            for t in results.get("techniques", []):
                if t["technique"] != technique:
                    continue
                if technique == "cached answer latency":
                    measured.append(
                        f"{t['family']}: p50 {fmt(t['with_p50_ms'], 2)} ms, "
                        f"p99 {fmt(t['with_p99_ms'], 2)} ms through the gateway"
                    )
                else:
                    text = f"{t['family']}: {ratio(t.get('gain'))} served"
                    if t.get("model_only_gain"):
                        text += f", {ratio(t['model_only_gain'])} model-only"
                    measured.append(text)
        cache = [t for t in results.get("techniques", []) if t["technique"] == "cache"]
        if technique == "cached answer latency" and cache:
            measured += [
                f"{t['family']} Zipf traffic: {ratio(t['gain'])} throughput" for t in cache
            ]
        rows.append([claim, "; ".join(measured) or "not measured", hw])
    return table(["seed claim", "measured here", "hardware"], rows)


def sweep_markdown(results: dict) -> str:
    out = []
    slo = results.get("meta", {}).get("slo_p99_ms")
    for family, best in results.get("best", {}).items():
        if best.get("config"):
            out.append(
                f"- **{family}**: best under p99 <= {fmt(slo, 0)} ms: {best['label']}, "
                f"concurrency {best['concurrency']}: {fmt(best['throughput'])} inf/s, "
                f"p99 {fmt(best['p99_ms'])} ms, avg batch {fmt(best.get('avg_batch'))}"
            )
        else:
            out.append(f"- **{family}**: {best.get('note', 'no result')}")
    rows = [
        [
            r["family"],
            r["variant"],
            r["max_batch_size"],
            "none" if r["queue_delay_us"] is None else r["queue_delay_us"],
            r["instances"],
            r["concurrency"],
            fmt(r.get("throughput")),
            fmt(r.get("p50_ms"), 2),
            fmt(r.get("p99_ms"), 2),
            fmt(r.get("avg_batch")),
            r.get("error", "")[:60],
        ]
        for r in results.get("sweep", [])
    ]
    if rows:
        out.append("")
        out.append(
            table(
                [
                    "model",
                    "variant",
                    "max batch",
                    "queue delay us",
                    "instances",
                    "conc.",
                    "inf/s",
                    "p50 ms",
                    "p99 ms",
                    "avg batch",
                    "error",
                ],
                rows,
            )
        )
    return "\n".join(out) or "_not measured in this run_"


def model_level_markdown(results: dict) -> str:
    rows = [
        [
            r["family"],
            r["model"],
            r["runtime"],
            r["level"],
            r["batch"],
            fmt(r["ms_per_batch"], 2),
            fmt(r["samples_per_s"]),
        ]
        for r in results.get("model_level", [])
    ]
    if not rows:
        return "_not measured in this run_"
    return table(
        ["family", "model", "runtime", "graph level", "batch", "ms / batch", "samples/s"], rows
    )


def cost_markdown(ranking: dict | None) -> str:
    if not ranking:
        return "_not computed in this run_"
    currency = ranking.get("currency", "USD")
    rows = []
    for r in ranking["rows"]:
        rows.append(
            [
                r["model"],
                r["hardware"],
                r["instance"],
                r["path"],
                fmt(r["throughput"]),
                fmt(r["p99_ms"]),
                "yes" if r["within_slo"] else "**no**",
                fmt(r["usd_per_hour"], 3),
                usd(r["usd_per_1k"]) if r["usd_per_1k"] else "n/a",
                r["source"],
            ]
        )
    text = table(
        [
            "model",
            "hardware",
            "priced as",
            "path",
            "inf/s at SLO",
            "p99 ms",
            "within SLO",
            f"{currency}/h",
            f"{currency} per 1,000 inferences",
            "source",
        ],
        rows,
    )
    if ranking.get("unmeasured"):
        names = ", ".join(
            f"{e['name']} ({currency} {e['usd_per_hour']}/h)" for e in ranking["unmeasured"]
        )
        text += (
            f"\n\nIn the price table but not measured (no number is invented for them; import a "
            f"result measured there): {names}."
        )
    return text


# ---------------------------------------------------------------------- plots
def baseline_plot(results: dict, path: Path) -> Path | None:
    rows = results.get("baseline", [])
    if not rows:
        return None
    labels = [f"{r['family']}\n{r['scenario'].split(' (')[0]}\nc{r['concurrency']}" for r in rows]
    x = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(rows)), 4.5))
    left.bar([i - 0.2 for i in x], [r["naive"]["throughput"] for r in rows], 0.4, label="naive")
    left.bar(
        [i + 0.2 for i in x], [r["optimized"]["throughput"] for r in rows], 0.4, label="optimized"
    )
    left.set_xticks(list(x), labels, fontsize=7)
    left.set_ylabel("requests/s")
    left.set_title("throughput")
    left.legend()
    right.bar([i - 0.2 for i in x], [r["naive"]["p99_ms"] for r in rows], 0.4, label="naive")
    right.bar(
        [i + 0.2 for i in x], [r["optimized"]["p99_ms"] for r in rows], 0.4, label="optimized"
    )
    right.set_xticks(list(x), labels, fontsize=7)
    right.set_ylabel("p99 ms")
    right.set_yscale("log")
    right.set_title("p99 latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_plot(results: dict, family: str, path: Path) -> Path | None:
    rows = [r for r in results.get("sweep", []) if r["family"] == family and r.get("throughput")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for config in dict.fromkeys(r["config"] for r in rows):
        points = sorted((r for r in rows if r["config"] == config), key=lambda r: r["concurrency"])
        ax.plot(
            [p["p99_ms"] for p in points],
            [p["throughput"] for p in points],
            marker="o",
            label=points[0]["label"],
            linewidth=1,
        )
    slo = results.get("meta", {}).get("slo_p99_ms")
    if slo:
        ax.axvline(slo, color="red", linestyle="--", linewidth=1, label=f"SLO p99 {slo:g} ms")
    best = results.get("best", {}).get(family, {})
    if best.get("config"):
        ax.scatter(
            [best["p99_ms"]],
            [best["throughput"]],
            s=250,
            marker="*",
            color="gold",
            edgecolor="black",
            zorder=5,
            label="best under SLO",
        )
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency (ms, log)")
    ax.set_ylabel("inferences/s")
    ax.set_title(f"{family}: throughput against p99 (points: concurrency)")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def techniques_plot(results: dict, path: Path) -> Path | None:
    rows = [t for t in results.get("techniques", []) if t.get("gain")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    labels = [f"{t['family']}: {t['technique']}" for t in rows]
    ax.barh(labels, [t["gain"] for t in rows], label="served")
    model_only = [t.get("model_only_gain") or 0 for t in rows]
    if any(model_only):
        ax.barh(labels, model_only, height=0.3, label="model only (ORT, batch 32)")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("gain (x)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_plot(ranking: dict | None, path: Path) -> Path | None:
    rows = [r for r in (ranking or {}).get("rows", []) if r.get("usd_per_1k")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["usd_per_1k"])
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.5))
    labels = [f"{r['model']} | {r['instance']} | {r['variant']}" for r in rows]
    ax.barh(labels, [r["usd_per_1k"] for r in rows], color="tab:green")
    ax.set_xscale("log")
    ax.set_xlabel(f"{ranking.get('currency', 'USD')} per 1,000 inferences at the SLO (log)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def targets_markdown(results: dict) -> str:
    """The issue's performance targets, checked against this run's numbers."""
    rows = []
    for r in results.get("baseline", []):
        if (
            r["family"] == "minilm"
            and r["scenario"].startswith("unique")
            and r["concurrency"] >= 32
        ):
            ok = (r["throughput_ratio"] or 0) >= 4 and (r["p99_ratio"] or 99) <= 1
            rows.append(
                [
                    "MiniLM, unique short sentences, concurrency 32: optimized >= 4x naive "
                    "throughput, p99 no worse",
                    f"{ratio(r['throughput_ratio'])} throughput, p99 {fmt(r['optimized']['p99_ms'])} "
                    f"vs {fmt(r['naive']['p99_ms'])} ms",
                    "**met**" if ok else "**not met**",
                ]
            )
        if (
            r["family"] == "digits"
            and r["scenario"].startswith("unique")
            and r["concurrency"] >= 32
        ):
            batch = r["optimized"].get("avg_batch")
            rows.append(
                [
                    "digits, concurrency 32: average batch >= 8 (through the stack)",
                    f"{fmt(batch)} (Triton counters, {r['optimized'].get('batch_model', 'digits')})",
                    "**met**" if (batch or 0) >= 8 else "**not met**",
                ]
            )
    sweep = [
        x
        for x in results.get("sweep", [])
        if x["family"] == "digits"
        and x["concurrency"] == 32
        and x.get("avg_batch")
        and x.get("queue_delay_us")
        and x["variant"] == "digits"
    ]
    if sweep:
        slo = results.get("meta", {}).get("slo_p99_ms") or float("inf")
        good = [x for x in sweep if x["avg_batch"] >= 8 and (x.get("p99_ms") or 1e9) <= slo]
        best = (
            max(good, key=lambda x: x.get("throughput") or 0)
            if good
            else max(sweep, key=lambda x: x["avg_batch"])
        )
        rows.append(
            [
                "digits, concurrency 32: average batch >= 8 (Triton direct, perf_analyzer)",
                f"{fmt(best['avg_batch'])} with {best['label']} ({fmt(best.get('throughput'))} inf/s, "
                f"p99 {fmt(best.get('p99_ms'))} ms)",
                "**met**" if best["avg_batch"] >= 8 else "**not met**",
            ]
        )
    if not rows:
        return "_the runs these targets need are not in this report_"
    return table(["target", "measured", "verdict"], rows)


def stack_config_text(results: dict) -> str:
    lines = []
    for family, tuned in (results.get("stack_config") or {}).items():
        if tuned:
            lines.append(
                f"- {family}: the stack serves `{tuned['model']}` with the sweep's best "
                f"config at this concurrency: {tuned['label']}"
            )
        else:
            lines.append(
                f"- {family}: the stack serves the canonical config (no sweep result for "
                "its model within the SLO)"
            )
    return "\n".join(lines)


def gateway_grpc_text(grpc: dict | None) -> str:
    if not grpc:
        return "gateway gRPC: not measured"
    if not grpc.get("available"):
        return "gateway gRPC: " + grpc.get("note", "not available")
    parts = []
    pa = grpc.get("perf_analyzer")
    if pa:
        parts.append(
            f"perf_analyzer c{pa['concurrency']}: {fmt(pa['throughput'])} inf/s, "
            f"p50 {fmt(pa['p50_ms'], 2)} ms, p99 {fmt(pa['p99_ms'], 2)} ms"
        )
    elif grpc.get("perf_analyzer_error"):
        parts.append(
            "perf_analyzer could not drive it (" + grpc["perf_analyzer_error"][-140:] + ")"
        )
    aio = grpc.get("aio_client")
    if aio:
        parts.append(
            f"tritonclient.grpc.aio closed loop c{aio['concurrency']}: "
            f"{fmt(aio['throughput'])} req/s, p50 {fmt(aio['p50_ms'], 2)} ms, "
            f"p99 {fmt(aio['p99_ms'], 2)} ms, errors {aio['errors']}"
        )
    return f"gateway gRPC ({grpc.get('target')}, distinct inputs): " + "; ".join(parts)


# ---------------------------------------------------------------------- document
def render(results: dict, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = results.get("meta", {})
    plots = {
        "baseline": baseline_plot(results, out_dir / "baseline.png"),
        "techniques": techniques_plot(results, out_dir / "techniques.png"),
        "cost": cost_plot(results.get("cost"), out_dir / "cost.png"),
    }
    for family in dict.fromkeys(r["family"] for r in results.get("sweep", [])):
        plots[f"sweep {family}"] = sweep_plot(results, family, out_dir / f"sweep-{family}.png")

    def image(key: str) -> str:
        return f"![{key}]({plots[key].name})" if plots.get(key) else ""

    grpc_text = gateway_grpc_text(results.get("gateway_grpc"))
    hw = meta.get("hardware", {})
    parts = [
        f"# Benchmark report{' (tiny setting: smoke numbers, not measurements)' if meta.get('tiny') else ''}",
        "",
        f"- started {meta.get('started', '?')}, finished {meta.get('finished', '?')}, git {meta.get('git', '?')}",
        f"- hardware: {hw.get('description', '?')} (`{hw.get('id', '?')}`), shared with other work: "
        "expect 10-20% run-to-run noise",
        f"- latency objective: p99 <= {fmt(meta.get('slo_p99_ms'), 0)} ms",
        f"- load generators: {', '.join(f'{k}: {v}' for k, v in meta.get('load_generators', {}).items())}",
        f"- {grpc_text}",
        "",
        "## Performance targets",
        "",
        targets_markdown(results),
        "",
        "## Seed claims against this machine",
        "",
        seed_claims_markdown(results),
        "",
        "## Naive server against the optimized stack",
        "",
        stack_config_text(results),
        "",
        "Naive: FastAPI + eager PyTorch FP32, one request per forward pass, no cache. Optimized: "
        "gateway (Redis cache, coalescing) -> Triton dynamic batching -> ONNX Runtime. Same model "
        "weights, same load generator and traffic, one after the other in this run. Ratios: "
        "optimized / naive (throughput higher is better; latency lower is better).",
        "",
        baseline_markdown(results),
        "",
        image("baseline"),
        "",
        "## One technique at a time",
        "",
        "Each row switches one technique on against its own reference, everything else equal. "
        "Served rows go through Triton (perf_analyzer over gRPC, distinct inputs, two instances "
        "with one ORT thread each: see the sweep for why) or the gateway (cache rows); model-only "
        "rows time the bare ONNX Runtime session at batch 32. Reading them: FP16 has no fast "
        "path in ONNX Runtime on this CPU (it converts), so about 1x is the expected CPU result; "
        "the graph optimization row compares the unoptimized export (`portable.onnx`, ORT "
        "optimizations off) with the served file (optimized offline by the conversion pipeline, "
        "ORT ENABLE_ALL) when the conversion kept the export.",
        "",
        techniques_markdown(results),
        "",
        image("techniques"),
        "",
        "## Configuration sweep",
        "",
        "Variants x max_batch_size x max_queue_delay x instances x concurrency, each point a model "
        "in a derived repository served by the bundled Triton, measured with perf_analyzer.",
        "",
        sweep_markdown(results),
        "",
    ]
    for key in plots:
        if key.startswith("sweep") and plots[key]:
            parts += [image(key), ""]
    parts += [
        "## Hardware: cost per 1,000 inferences at the SLO",
        "",
        f"Price table: `{(results.get('cost') or {}).get('prices', 'benchmarks/prices.yaml')}` "
        "(editable). Imported results: "
        f"{', '.join((results.get('cost') or {}).get('imported_from', [])) or 'none'}.",
        "",
        cost_markdown(results.get("cost")),
        "",
        image("cost"),
        "",
        "## Model only (no server)",
        "",
        model_level_markdown(results),
        "",
    ]
    if results.get("errors"):
        parts += ["## Sections that failed", ""]
        parts += [f"- {e['section']}: {e['error']}" for e in results["errors"]]
        parts.append("")
    (out_dir / "report.md").write_text("\n".join(parts))
    if not (out_dir / "results.json").exists():
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return out_dir

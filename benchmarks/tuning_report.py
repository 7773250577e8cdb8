"""tuning.json -> report.md + search.png: pure functions of the record, so a report can be made
again without measuring.

Sections: the decision (winner against the served configuration it replaced, at the objective),
which variant won on this hardware and by how much (variants compared at the same knobs), the cost
per 1,000 inferences (`benchmarks/prices.yaml` x measured throughput), the search path (every
trial in order, early stops included) and what was not measured and why.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import fmt, plt, ratio, table, usd


def variant_margin(record: dict) -> dict:
    """Each variant's trial in the variant stage (same knobs), fastest first, with its ratio to
    the fastest of the others: {"rows": [...], "winner": name, "ratio": float | None}."""
    rows = [t for t in record["trials"] if t["stage"] == "variant" and t["throughput"]]
    rows.sort(key=lambda t: t["throughput"], reverse=True)
    served = record["winner"]["point"]["variant"]
    mine = next((t for t in rows if t["point"]["variant"] == served), None)
    others = [t for t in rows if t["point"]["variant"] != served]
    margin = mine["throughput"] / others[0]["throughput"] if mine and others else None
    return {"rows": rows, "winner": served, "ratio": margin}


def _knobs(point: dict) -> str:
    preferred = f", preferred {point['preferred']}" if point.get("preferred") else ""
    return (
        f"batch<={point['max_batch_size']}, delay {point['queue_delay_us']}us{preferred}, "
        f"{point['instances']} inst x {point['threads'] or 'default'} threads"
    )


def _trial_row(t: dict) -> list[str]:
    note = t["stopped"] or t["error"] or (f"mean of {t['repeats']}" if t["repeats"] > 1 else "")
    return [
        str(t["index"]),
        t["stage"],
        t["point"]["variant"],
        _knobs(t["point"]),
        fmt(t["throughput"]),
        fmt(t["p99_ms"]),
        fmt(t["avg_batch"]),
        f"{t['seconds']:.0f}",
        note,
    ]


def served_line(record: dict) -> str:
    """What serves now and under which name clients reach it."""
    winner = record["winner"]["point"]
    knobs = _knobs(winner)
    if record["call"] == record["entry"] and record["entry"] != winner["variant"]:
        return f"`{record['entry']}` now runs `{winner['variant']}`, {knobs}."
    if record["call"] == record["entry"]:
        return f"`{record['entry']}` now runs with {knobs}."
    return (
        f"Call `{record['call']}` ({knobs}): a model without a text ensemble has no stable name "
        f"in front of its variants, so `{record['entry']}` keeps its configuration."
    )


def decision_markdown(record: dict) -> str:
    winner, default = record["winner"], record["default"]
    objective = record["objective"]
    cost = record["cost"]
    rows = [
        [
            name,
            t["point"]["variant"],
            _knobs(t["point"]),
            fmt(t["throughput"]),
            fmt(t["p99_ms"]),
            "yes" if t["p99_ms"] is not None and t["p99_ms"] <= objective["slo_p99_ms"] else "no",
            usd(cost.get(f"{name}_usd_per_1k")),
        ]
        for name, t in (("default", default), ("winner", winner))
    ]
    header = ["", "variant", "configuration", "inf/s", "p99 ms", "meets SLO", "USD / 1k inf"]
    price = (
        f"{cost['instance']} at {cost['usd_per_hour']} USD/h"
        if cost.get("usd_per_hour") is not None
        else "no entry in prices.yaml for this machine"
    )
    return "\n".join(
        [
            f"**{served_line(record)}** {record['why']}",
            "",
            table(header, rows),
            "",
            f"Throughput ratio winner / default: **{ratio(record['gain']['throughput_ratio'])}**"
            f" (p99 {fmt(default['p99_ms'])} -> {fmt(winner['p99_ms'])} ms). Price: {price}; "
            "cost per 1,000 inferences = price / (throughput x 3,600) x 1,000, only where the "
            "p99 objective is met.",
        ]
    )


def variants_markdown(record: dict) -> str:
    margin = variant_margin(record)
    rows = [
        [t["point"]["variant"], fmt(t["throughput"]), fmt(t["p99_ms"]), t["stopped"] or t["error"]]
        for t in margin["rows"]
    ]
    lead = (
        f"`{margin['winner']}` won on this hardware, {ratio(margin['ratio'])} the throughput of "
        "the next variant at the same configuration."
        if margin["ratio"]
        else f"`{margin['winner']}` was the only variant measured."
    )
    skipped = [[name, why] for name, why in record["skipped"].items()]
    parts = [lead, "", table(["variant", "inf/s", "p99 ms", "note"], rows)]
    if skipped:
        parts += ["", "Not measured here:", "", table(["variant", "why"], skipped)]
    return "\n".join(parts)


def render_markdown(record: dict, plot: str | None) -> str:
    o = record["objective"]
    header = ["#", "stage", "variant", "configuration", "inf/s", "p99 ms", "rows/exec", "s", "note"]
    return "\n".join(
        [
            f"# make optimize MODEL={record['model']}",
            "",
            f"Objective: highest throughput with p99 <= {o['slo_p99_ms']:g} ms at concurrency "
            f"{o['concurrency']} ({record['load_generator']}). Machine: {record['key']['machine']['cpu']}; "
            f"load average {record['load_average']['before']} before, "
            f"{record['load_average']['after']} after. {len(record['trials'])} trials in "
            f"{record['elapsed_s']:.0f} s of a {record['budget_s']:.0f} s budget"
            f"{' (budget exhausted)' if record['budget_exhausted'] else ''}. {record['when']}.",
            "",
            "## Decision",
            "",
            decision_markdown(record),
            "",
            "## Variants",
            "",
            variants_markdown(record),
            "",
            "## Search path",
            "",
            *([f"![throughput vs p99 and the search path]({plot})", ""] if plot else []),
            table(header, [_trial_row(t) for t in record["trials"]]),
            "",
        ]
    )


def search_plot(record: dict, path: Path) -> Path | None:
    """Left: throughput vs p99 of every trial (hollow: stopped at its probe), the objective, the
    winner and the default. Right: throughput by trial order, coloured by stage (hatched: the
    probe's numbers of a trial stopped early)."""
    trials = [t for t in record["trials"] if t["throughput"] and t["p99_ms"]]
    if not trials:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    variants = sorted({t["point"]["variant"] for t in trials})
    for i, variant in enumerate(variants):
        for stopped in (False, True):
            mine = [
                t
                for t in trials
                if t["point"]["variant"] == variant and bool(t["stopped"]) == stopped
            ]
            if mine:
                left.scatter(
                    [t["p99_ms"] for t in mine],
                    [t["throughput"] for t in mine],
                    label=f"{variant}{' (stopped early)' if stopped else ''}",
                    facecolors="none" if stopped else f"C{i}",
                    edgecolors=f"C{i}",
                )
    for name, marker in (("default", "s"), ("winner", "*")):
        t = record[name]
        if t["throughput"] and t["p99_ms"]:
            left.scatter([t["p99_ms"]], [t["throughput"]], marker=marker, s=220, c="k", label=name)
    left.axvline(
        record["objective"]["slo_p99_ms"], color="r", linestyle="--", label="p99 objective"
    )
    left.set(xlabel="p99 latency (ms)", ylabel="inferences/s", title="Candidates")
    left.legend(fontsize=7)
    stages = list(dict.fromkeys(t["stage"] for t in trials))
    for i, stage in enumerate(stages):
        for stopped in (False, True):
            mine = [t for t in trials if t["stage"] == stage and bool(t["stopped"]) == stopped]
            if mine:
                right.bar(
                    [t["index"] for t in mine],
                    [t["throughput"] for t in mine],
                    color=f"C{i}",
                    hatch="//" if stopped else None,
                    alpha=0.5 if stopped else 1.0,
                    label=None if stopped else stage,
                )
    right.set(xlabel="trial", ylabel="inferences/s", title="Search path")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(record: dict, out_dir: Path) -> Path:
    """report.md and search.png in `out_dir`; returns report.md's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = search_plot(record, out_dir / "search.png")
    path = out_dir / "report.md"
    path.write_text(render_markdown(record, plot.name if plot else None))
    return path

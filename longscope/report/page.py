"""Build one run's report page: the analyses of its rows laid out as headline, tables and figures."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from longscope import trace
from longscope.analysis import intervals
from longscope.analysis.benchmarks import benchmark_reports
from longscope.analysis.degradation import degradation
from longscope.analysis.effective_length import DEFAULT_SHARE, DEFAULT_THRESHOLD, base_score
from longscope.analysis.frontier import COSTS, frontier
from longscope.analysis.heatmap import depth_grids
from longscope.analysis.paired import PairedDifference, method_differences
from longscope.analysis.plane import difficulty_plane
from longscope.analysis.scores import OverallCell, ScoreCell, ScoreTable, methods_of, score_table
from longscope.config import RunConfig
from longscope.config import rerun_command as rerun_command_of
from longscope.report import breakdowns as score_breakdowns
from longscope.report import costs, figures, long_output
from longscope.report import format as fmt
from longscope.report import judging as judge_section
from longscope.report import probe as probe_section
from longscope.report import retrieval as retrieval_section
from longscope.report.load import RunData
from longscope.report.templates import environment

MAX_PREDICTION_ROWS = 500
MAX_PREDICTION_CHARS = 2000


@dataclass
class Analyses:
    """Everything computed from one run, shared by the page and the JSON export.

    One score table per method; the primary one (the full cache when the run has it) leads the page and
    is the one degradation, depth and the difficulty plane describe. ``differences``: every other method
    against the primary one, paired on the samples both scored.
    """

    tables: dict[str, ScoreTable]
    primary: str
    cost: costs.CostCheck
    threshold: float
    differences: list[PairedDifference] = field(default_factory=list)

    @property
    def table(self) -> ScoreTable:
        return self.tables[self.primary]


def analyse(data: RunData, threshold: float | None = None) -> Analyses:
    chosen = threshold if threshold is not None else float(data.config.get("threshold", DEFAULT_THRESHOLD))
    methods = methods_of(data.results) or ["full"]
    tables = {m: score_table(data.results, data.metadata, threshold=chosen, method=m) for m in methods}
    cost = costs.check_run(data.config.get("model") or None, data.results)
    # Rows without a length are rejected benchmark records: no sample was scored, so nothing to pair.
    differences = (
        method_differences([r for r in data.results if r.length], reference=methods[0])
        if len(methods) > 1
        else []
    )
    return Analyses(tables=tables, primary=methods[0], cost=cost, threshold=chosen, differences=differences)


# The published rules the page and summary.json state next to the numbers they produce.
def effective_rule(threshold: float) -> str:
    return (
        f"RULER's rule: a length passes when its mean score exceeds the threshold ({threshold:g}); the effective "
        f"length is the longest passing length. “>L”: the longest tested length L passes (the model may "
        f"read further than was tested); “<S”: even the shortest tested length S fails. RULER's own "
        f"table lists one row at exactly 85.6 as passing; longscope follows the stated rule, so a score equal "
        f"to the threshold does not pass."
    )


RELATIVE_RULE = (
    f"NoLiMa's rule: the longest tested length whose score keeps at least {100 * DEFAULT_SHARE:g}% of the "
    f"score at the shortest tested length (the base); meaningful where the base is below the absolute threshold. "
    "A NoLiMa task's base is the mean over its three shortest lengths, as NoLiMa averages 250, 500 and 1K."
)
AUC_RULE = (
    "Area under the score-length curve drawn against log2 of the length (trapezoids), given as its mean height "
    "(0-100); its interval resamples every cell within itself, when every cell has at least "
    f"{intervals.MIN_BOOTSTRAP} samples."
)
INTERVAL_RULES = {
    "pass/fail": "Wilson score interval at every n (counting each context once where questions share one, "
    f"below {intervals.MIN_BOOTSTRAP} contexts; a cluster bootstrap by context from {intervals.MIN_BOOTSTRAP})",
    "graded": f"percentile bootstrap (by context where questions share one) from {intervals.MIN_BOOTSTRAP} "
    "samples; below that no interval, with the reason",
    "mean over tasks": "stratified bootstrap (each task resampled within itself) only when every task has at "
    f"least {intervals.MIN_BOOTSTRAP} samples at that length; otherwise no interval, with the reason",
    "paired": "methods (and runs) compared on the samples both scored: McNemar's exact test for pass/fail "
    f"scores, a paired bootstrap interval of the difference from {intervals.MIN_BOOTSTRAP} contexts",
}


def version() -> str:
    try:
        from importlib.metadata import version as installed

        return installed("longscope")
    except Exception:  # noqa: BLE001 - a source checkout without metadata still reports
        return "(source)"


def _cell(
    cell: ScoreCell | OverallCell, legend: fmt.Legend, notes: list[str] | None = None
) -> dict[str, Any]:
    """One printed score: the mean, its interval marked with how it was made (or why there is none), and n."""
    return {"mean": fmt.score(cell.mean), **legend.cell(cell.interval), "n": cell.n, "notes": notes or []}


def _length_or_none(tokens: int | None) -> str:
    return "none" if tokens is None else fmt.length(tokens)


def _curve_columns(table: ScoreTable, task: str | None, legend: fmt.Legend) -> dict[str, Any]:
    """The columns that read a whole score-length curve: RULER's effective length, NoLiMa's relative one, the
    AUC with its interval, and the two weighted averages."""
    return {
        "effective": table.effective_label(task),
        "relative": _length_or_none(table.relative_effective_length(task)),
        "auc": {"mean": fmt.score(table.auc(task)), **legend.cell(table.auc_interval(task), fmt.AUC_KIND)},
        "wavg_inc": fmt.score(table.weighted("inc", task)),
        "wavg_dec": fmt.score(table.weighted("dec", task)),
    }


def _score_rows(table: ScoreTable, legend: fmt.Legend) -> list[dict[str, Any]]:
    rows = []
    for task in table.tasks:
        cells = []
        for length in table.lengths:
            cell = table.cells.get((task, length))
            if cell is None:
                cells.append(None)
                continue
            notes = [f"{count} {what}" for what, count in
                     (("failed", cell.failed), ("truncated", cell.truncated), ("skipped", cell.skipped)) if count]  # fmt: skip
            cells.append(_cell(cell, legend, notes))
        rows.append({"task": task, "cells": cells, **_curve_columns(table, task, legend), "total": False})
    rows.append(
        {
            "task": "mean over tasks",
            "cells": [_cell(table.overall[n], legend) for n in table.lengths],
            **_curve_columns(table, None, legend),
            "total": True,
        }
    )
    return rows


def degradation_by_task(table: ScoreTable) -> dict[str, Any]:
    series = {task: degradation(table.per_length(task)) for task in table.tasks}
    series["mean over tasks"] = degradation(table.per_length())
    return series


def _degradation_section(table: ScoreTable) -> dict[str, Any] | None:
    if len(table.lengths) < 2:
        return None
    series = degradation_by_task(table)
    rows = []
    for name, result in series.items():
        relative = result.relative()
        values = [fmt.percent(None if relative.get(n) is None else 100 * relative[n]) for n in table.lengths]
        rows.append({"task": name, "cells": values, "total": name == "mean over tasks"})
    relative = {name: r.relative() for name, r in series.items()}
    has_points = any(v is not None for r in relative.values() for v in r.values())
    plot = figures.degradation_plot(relative, table.lengths) if has_points else None
    return {"rows": rows, "plot": plot}


def _measured_plane_rows(plane) -> list[dict[str, str]]:
    """Declared against measured coordinates per task and length; declared-only tasks are marked as such."""

    def two(value: float | None, missing: str = "") -> str:
        return missing if value is None else f"{value:.2f}"

    rows = [
        {
            "task": point.task,
            "length": fmt.length(length),
            "n": point.n,
            "declared": f"{two(point.scope)} / {two(point.diffusion)}",
            "scope": two(point.measured_scope, "declared only"),
            "bm25": two(point.measured_diffusion_bm25),
            "dense": two(point.measured_diffusion_dense),
            "distance": two(point.distance),
        }
        for length in plane.lengths
        for point in plane.points[length]
    ]
    return rows if any(row["distance"] for row in rows) else []


def _frontier_section(data: RunData) -> dict[str, Any] | None:
    points = {cost: frontier(data.series, cost) for cost in COSTS}
    if not any(points.values()):
        return None
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    legend = fmt.Legend()
    for cost, group in points.items():
        for p in group:
            score = {"mean": fmt.score(p.score), **legend.cell(p.interval), "n": p.n}
            row = by_key.setdefault((p.method, p.length), {"method": p.method, "length": fmt.length(p.length),
                                                           "score": score, "kv": "—", "ttft": "—",
                                                           "tokens": "—", "dominated": False})  # fmt: skip
            row["dominated"] = row["dominated"] or p.dominated
            row[{"kv_bytes": "kv", "prefill_s": "ttft", "input_tokens": "tokens"}[cost]] = {
                "kv_bytes": fmt.nbytes, "prefill_s": fmt.seconds, "input_tokens": lambda v: f"{v:,.0f}"
            }[cost](p.cost)  # fmt: skip
    rows = []
    for _key, row in sorted(by_key.items(), key=lambda item: (item[0][1], item[0][0])):
        row["frontier"] = "no (dominated)" if row.pop("dominated") else "yes"
        rows.append(row)
    return {"plot": figures.frontier_plot(points), "rows": rows, "legend": legend.entries}


def _benchmark_cell(cell: ScoreCell, legend: fmt.Legend) -> dict[str, Any]:
    # n has its own column in the benchmark tables; the cell carries the mean and its interval.
    return {"mean": fmt.score(cell.mean), **legend.cell(cell.bound().interval), "n": None}


def _benchmark_section(data: RunData) -> list[dict[str, Any]]:
    """Per published benchmark: each subset's score with its interval, the macro average with the stratified
    one, the published breakdowns, and the truncated, skipped (invalid or too long) and failed records."""
    sections = []
    for report in benchmark_reports(data.series, data.metadata):
        legend = fmt.Legend()
        shown = functools.partial(_benchmark_cell, legend=legend)
        subsets = [
            {
                "name": name,
                "score": shown(t),
                "n": t.n,
                "truncated": t.truncated,
                "skipped": t.skipped,
                "failed": t.failed,
            }  # fmt: skip
            for name, t in sorted(report.subsets.items())
        ]
        breakdowns = [
            {
                "key": key,
                "rows": [
                    {"value": str(value), "score": shown(t), "n": t.n}
                    for value, t in sorted(groups.items(), key=lambda item: str(item[0]))
                ],
            }
            for key, groups in report.breakdowns.items()
        ]
        scored = [t for t in report.subsets.values() if t.n]
        average = intervals.stratified_interval([(t.scores, t.contexts) for t in scored])
        sections.append(
            {
                "name": report.name,
                "subsets": subsets,
                "average": {"mean": fmt.score(report.average), **legend.cell(average), "n": None},
                "totals": report.totals(),
                "breakdowns": breakdowns,
                "legend": legend.entries,
                "printed": {
                    k: "—" if v is None else f"{v:.2f}" for k, v in (report.published_scores() or {}).items()
                },
                "printed_average": "—"
                if report.published_average() is None
                else f"{report.published_average():.2f}",
                # HELMET's per-category averages and their mean (None for benchmarks without categories).
                "categories": {
                    k: "—" if v is None else f"{v:.2f}" for k, v in (report.category_scores() or {}).items()
                },
            }  # fmt: skip
        )
    return sections


def _cost_section(check: costs.CostCheck) -> dict[str, Any]:
    section: dict[str, Any] = {"overlay": check.overlay is not None, "note": check.note, "predictions": None}
    if check.overlay is not None:
        section.update(
            summary=costs.summary_line(check.overlay),
            plot=figures.overlay_plot(check.overlay),
            rows=costs.length_rows(check.overlay),
        )
    if check.shape is not None and check.hardware is not None and check.lengths:
        section.update(
            model=check.shape.name,
            hardware=check.hardware.name,
            predictions=costs.prediction_rows(check.shape, check.hardware, check.lengths),
            assumptions=costs.assumptions(check.shape, check.hardware),
        )
    return section


def _predictions(data: RunData) -> tuple[list[dict[str, Any]], str]:
    rows = sorted(
        data.series, key=lambda r: (r.task, r.length, -1.0 if r.depth is None else r.depth, r.seed, r.method)
    )
    shown = []
    for row in rows[:MAX_PREDICTION_ROWS]:
        turns = data.answers.get(row.sample_id) or []
        gold = turns[row.turn] if row.turn < len(turns) else []
        text = row.prediction if row.status == "ok" else f"(failed) {row.error or ''}"
        if len(text) > MAX_PREDICTION_CHARS:
            text = text[:MAX_PREDICTION_CHARS] + f" … ({len(text) - MAX_PREDICTION_CHARS} more characters)"
        shown.append(
            {
                "task": row.task,
                "length": fmt.length(row.length),
                "depth": "" if row.depth is None else f"{row.depth:g}",
                "seed": row.seed,
                "method": row.method,
                "status": row.status,
                "score": "" if row.score is None else f"{100 * row.score:.0f}",
                "prediction": text,
                "gold": " | ".join(gold),
            }
        )
    note = "Every model output as it came back, shown as text."
    if len(rows) > MAX_PREDICTION_ROWS:
        note += f" The first {MAX_PREDICTION_ROWS} of {len(rows)} rows; results.csv holds them all."
    return shown, note


def rerun_commands(data: RunData) -> list[str]:
    """The `longscope run` lines that re-create this run's rows, every option written out: one per invocation
    that wrote rows here, the later ones adding their plan's rows to the run the first one made."""
    lines = []
    for index, config in enumerate(data.invocations):
        if not config.get("tasks"):
            return lines  # a configuration that cannot be re-run stops the sequence: later lines add to it
        line = rerun_command_of(RunConfig.from_dict(config), str(data.run_dir))
        lines.append(line if index == 0 else f"{line} --add")
    return lines


def rerun_command(data: RunData) -> str | None:
    """The first re-run line (the one that creates the run), or None when the run cannot be re-run."""
    lines = rerun_commands(data)
    return lines[0] if lines else None


def _method_rows(analyses: Analyses, lengths: list[int], legend: fmt.Legend) -> list[dict[str, Any]]:
    rows = []
    for method, table in analyses.tables.items():
        rows.append(
            {
                "method": method,
                **_curve_columns(table, None, legend),
                "cells": [_cell(table.overall[n], legend) if n in table.overall else None for n in lengths],
            }
        )
    return rows


def _paired_section(analyses: Analyses) -> dict[str, Any] | None:
    """Each method against the reference on the samples both scored, per length and over all lengths, as
    sentences that carry the difference, its interval, n, the test and the verdict."""
    if not analyses.differences:
        return None
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in analyses.differences:
        groups.setdefault(d.other, []).append(paired_item(d))
    return {
        "reference": analyses.primary,
        "groups": [{"method": method, "items": items} for method, items in groups.items()],
    }


def paired_item(d: PairedDifference) -> dict[str, Any]:
    return {
        "length": "all lengths" if d.length is None else fmt.length(d.length),
        "sentence": d.sentence(),
        "significant": d.significant,
        "total": d.length is None,
    }


def _headline(table: ScoreTable) -> dict[str, Any]:
    """The headline numbers of one table, each with the interval it shows named (or why there is none)."""
    base = base_score(table.per_length())
    relative = table.relative_effective_length()
    auc_interval = table.auc_interval()
    return {
        "effective": table.effective_label(),
        "effective_rule": effective_rule(table.threshold),
        "relative": _length_or_none(relative),
        "relative_share": f"{100 * DEFAULT_SHARE:g}%",
        "relative_rule": RELATIVE_RULE
        + (f" Base here: {fmt.score(base)} at {fmt.length(table.lengths[0])}." if base is not None else ""),
        "auc": fmt.score(table.auc()),
        "auc_rule": AUC_RULE,
        "auc_ci": fmt.interval(auc_interval.low, auc_interval.high),
        "auc_kind": fmt.kind_text(auc_interval, table.level, fmt.AUC_KIND),
        "wavg_inc": fmt.score(table.weighted("inc")),
        "wavg_dec": fmt.score(table.weighted("dec")),
        "per_length": [
            {
                "length": fmt.length(n),
                "mean": fmt.score(table.overall[n].mean),
                "ci": fmt.interval(table.overall[n].low, table.overall[n].high),
                "kind": fmt.kind_text(table.overall[n].interval, table.level),
                "n": table.overall[n].n,
                "tasks": table.overall[n].tasks,
            }
            for n in table.lengths
        ],
    }


def render_report(data: RunData, analyses: Analyses) -> str:
    trace.point("report")
    table = analyses.table
    has_rows = bool(table.cells)
    several = len(analyses.tables) > 1
    primary_rows = [r for r in data.series if r.method == analyses.primary]
    context: dict[str, Any] = {
        "title": f"longscope: {data.results[0].model if data.results else data.label}"
        + (" (unfinished)" if data.in_progress else ""),
        "model_name": data.results[0].model if data.results else data.label,
        "model_id": data.model,
        "run_dir": str(data.run_dir),
        "n_rows": len(data.results),
        "in_progress": data.in_progress,
        "has_rows": has_rows,
        "version": version(),
        "written": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "threshold": f"{analyses.threshold:g}",
        "primary": analyses.primary,
        "several_methods": several,
        "cost": _cost_section(analyses.cost),
        "rerun": rerun_commands(data),
        "paired": None,
        "degradation": None,
        "heatmaps": [],
        "plane": None,
        "frontier": None,
    }
    context["predictions"], context["predictions_note"] = _predictions(data)
    context["benchmarks"] = _benchmark_section(data)
    context["long_output"] = long_output.section(data, table.level)
    context["probe"] = probe_section.section(data)
    context["retrieval"] = retrieval_section.section(data)
    context["judging"] = judge_section.section(data)
    context["breakdowns"] = score_breakdowns.section(data, table.level)
    if has_rows:
        all_lengths = sorted({n for t in analyses.tables.values() for n in t.lengths})
        method_legend = fmt.Legend(table.level)
        sections = []
        for method, t in analyses.tables.items():
            if not t.cells:
                continue
            legend = fmt.Legend(t.level)
            rows = _score_rows(t, legend)
            sections.append(
                {
                    "method": method,
                    "length_headers": [fmt.length(n) for n in t.lengths],
                    "rows": rows,
                    "legend": legend.entries,  # after the rows: they are what fills it
                    "plot": figures.scores_by_length(t, method if several else None),
                }
            )
        context.update(
            **_headline(table),
            method_rows=_method_rows(analyses, all_lengths, method_legend) if several else [],
            method_legend=method_legend.entries,
            method_headers=[fmt.length(n) for n in all_lengths],
            totals={k: sum(t.totals()[k] for t in analyses.tables.values()) for k in table.totals()},
            level=f"{100 * table.level:g}",
            resamples=table.resamples,
            seed=table.seed,
            min_bootstrap=intervals.MIN_BOOTSTRAP,
            interval_rules=INTERVAL_RULES,
            score_sections=sections,
            paired=_paired_section(analyses),
            length_headers=[fmt.length(n) for n in table.lengths],
            degradation=_degradation_section(table),
            heatmaps=[figures.heatmap(grid) for grid in depth_grids(primary_rows, data.metadata)],
            frontier=_frontier_section(data),
        )
        plane = difficulty_plane(primary_rows, data.metadata)
        if any(plane.points.values()):
            context["plane"] = {
                "plot": figures.plane_plot(plane),
                "unplaced": plane.unplaced,
                "measured": _measured_plane_rows(plane),
            }
    return environment().get_template("report").render(**context)

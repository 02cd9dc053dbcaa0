"""Build one run's report page: the analyses of its rows laid out as headline, tables and figures."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from longscope.analysis.benchmarks import benchmark_reports
from longscope.analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from longscope.analysis.degradation import degradation
from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.analysis.frontier import COSTS, frontier
from longscope.analysis.heatmap import depth_grids
from longscope.analysis.plane import difficulty_plane
from longscope.analysis.scores import ScoreTable, methods_of, score_table
from longscope.config import RunConfig
from longscope.config import rerun_command as rerun_command_of
from longscope.report import costs, figures
from longscope.report import format as fmt
from longscope.report.load import RunData
from longscope.report.templates import environment

MAX_PREDICTION_ROWS = 500
MAX_PREDICTION_CHARS = 2000


@dataclass
class Analyses:
    """Everything computed from one run, shared by the page and the JSON export.

    One score table per method; the primary one (the full cache when the run has it) leads the page and
    is the one degradation, depth and the difficulty plane describe.
    """

    tables: dict[str, ScoreTable]
    primary: str
    cost: costs.CostCheck
    threshold: float

    @property
    def table(self) -> ScoreTable:
        return self.tables[self.primary]


def analyse(data: RunData, threshold: float | None = None) -> Analyses:
    chosen = threshold if threshold is not None else float(data.config.get("threshold", DEFAULT_THRESHOLD))
    methods = methods_of(data.results) or ["full"]
    tables = {m: score_table(data.results, data.metadata, threshold=chosen, method=m) for m in methods}
    cost = costs.check_run(data.config.get("model") or None, data.results)
    return Analyses(tables=tables, primary=methods[0], cost=cost, threshold=chosen)


def version() -> str:
    try:
        from importlib.metadata import version as installed

        return installed("longscope")
    except Exception:  # noqa: BLE001 - a source checkout without metadata still reports
        return "(source)"


def _score_rows(table: ScoreTable) -> list[dict[str, Any]]:
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
            cells.append({"mean": fmt.score(cell.mean), "ci": fmt.interval(cell.low, cell.high), "n": cell.n,
                          "notes": notes})  # fmt: skip
        rows.append(
            {
                "task": task,
                "cells": cells,
                "effective": fmt.length(table.effective_length(task)),
                "wavg_inc": fmt.score(table.weighted("inc", task)),
                "wavg_dec": fmt.score(table.weighted("dec", task)),
                "total": False,
            }
        )
    rows.append(
        {
            "task": "mean over tasks",
            "cells": [
                {
                    "mean": fmt.score(table.overall[n].mean),
                    "ci": fmt.interval(table.overall[n].low, table.overall[n].high),
                    "n": None,
                    "notes": [],
                }
                for n in table.lengths
            ],
            "effective": fmt.length(table.effective_length()),
            "wavg_inc": fmt.score(table.weighted("inc")),
            "wavg_dec": fmt.score(table.weighted("dec")),
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


def _frontier_section(data: RunData) -> dict[str, Any] | None:
    points = {cost: frontier(data.series, cost) for cost in COSTS}
    if not any(points.values()):
        return None
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for cost, group in points.items():
        for p in group:
            row = by_key.setdefault((p.method, p.length), {"method": p.method, "length": fmt.length(p.length),
                                                           "score": fmt.score(p.score), "kv": "—", "ttft": "—",
                                                           "tokens": "—", "dominated": False})  # fmt: skip
            row["dominated"] = row["dominated"] or p.dominated
            row[{"kv_bytes": "kv", "prefill_s": "ttft", "input_tokens": "tokens"}[cost]] = {
                "kv_bytes": fmt.nbytes, "prefill_s": fmt.seconds, "input_tokens": lambda v: f"{v:,.0f}"
            }[cost](p.cost)  # fmt: skip
    rows = []
    for _key, row in sorted(by_key.items(), key=lambda item: (item[0][1], item[0][0])):
        row["frontier"] = "no (dominated)" if row.pop("dominated") else "yes"
        rows.append(row)
    return {"plot": figures.frontier_plot(points), "rows": rows}


def _benchmark_section(data: RunData) -> list[dict[str, Any]]:
    """Per published benchmark: each subset's score, the macro average, the published breakdowns, and the
    truncated, skipped (invalid or too long) and failed records."""
    sections = []
    for report in benchmark_reports(data.series, data.metadata):
        subsets = [
            {
                "name": name,
                "mean": fmt.score(t.mean),
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
                    {"value": str(value), "mean": fmt.score(t.mean), "n": t.n}
                    for value, t in sorted(groups.items(), key=lambda item: str(item[0]))
                ],
            }
            for key, groups in report.breakdowns.items()
        ]
        sections.append(
            {
                "name": report.name,
                "subsets": subsets,
                "average": fmt.score(report.average),
                "totals": report.totals(),
                "breakdowns": breakdowns,
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


def rerun_command(data: RunData) -> str | None:
    """The `longscope run` line that re-creates this run's rows, every option written out."""
    if not data.config.get("tasks"):
        return None
    return rerun_command_of(RunConfig.from_dict(data.config), str(data.run_dir))


def _method_rows(analyses: Analyses) -> list[dict[str, Any]]:
    lengths = sorted({n for table in analyses.tables.values() for n in table.lengths})
    rows = []
    for method, table in analyses.tables.items():
        effective = table.effective_length()
        rows.append(
            {
                "method": method,
                "effective": fmt.length(effective) if effective else "none",
                "wavg_inc": fmt.score(table.weighted("inc")),
                "wavg_dec": fmt.score(table.weighted("dec")),
                "means": [fmt.score(table.overall[n].mean) if n in table.overall else "—" for n in lengths],
            }
        )
    return rows


def render_report(data: RunData, analyses: Analyses) -> str:
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
        "rerun": rerun_command(data),
        "degradation": None,
        "heatmaps": [],
        "plane": None,
        "frontier": None,
    }
    context["predictions"], context["predictions_note"] = _predictions(data)
    context["benchmarks"] = _benchmark_section(data)
    if has_rows:
        all_lengths = sorted({n for t in analyses.tables.values() for n in t.lengths})
        context.update(
            effective=fmt.length(table.effective_length()) if table.effective_length() else "none",
            wavg_inc=fmt.score(table.weighted("inc")),
            wavg_dec=fmt.score(table.weighted("dec")),
            per_length=[
                {
                    "length": fmt.length(n),
                    "mean": fmt.score(table.overall[n].mean),
                    "ci": fmt.interval(table.overall[n].low, table.overall[n].high),
                    "tasks": table.overall[n].tasks,
                }
                for n in table.lengths
            ],
            method_rows=_method_rows(analyses) if several else [],
            method_headers=[fmt.length(n) for n in all_lengths],
            totals={k: sum(t.totals()[k] for t in analyses.tables.values()) for k in table.totals()},
            resamples=DEFAULT_RESAMPLES,
            seed=DEFAULT_SEED,
            score_sections=[
                {
                    "method": method,
                    "length_headers": [fmt.length(n) for n in t.lengths],
                    "rows": _score_rows(t),
                    "plot": figures.scores_by_length(t, method if several else None),
                }
                for method, t in analyses.tables.items()
                if t.cells
            ],
            length_headers=[fmt.length(n) for n in table.lengths],
            degradation=_degradation_section(table),
            heatmaps=[figures.heatmap(grid) for grid in depth_grids(primary_rows, data.metadata)],
            frontier=_frontier_section(data),
        )
        plane = difficulty_plane(primary_rows, data.metadata)
        if any(plane.points.values()):
            context["plane"] = {"plot": figures.plane_plot(plane), "unplaced": plane.unplaced}
    return environment().get_template("report").render(**context)

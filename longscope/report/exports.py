"""The files written beside a report: every result row as CSV, the report's numbers as JSON, the run config."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from longscope.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED
from longscope.analysis.degradation import degradation
from longscope.analysis.frontier import COSTS, frontier
from longscope.analysis.heatmap import depth_grids
from longscope.analysis.scores import ScoreTable
from longscope.cache import atomic_write_text
from longscope.core import Result
from longscope.report.load import RunData
from longscope.report.page import Analyses, rerun_command

RESULT_COLUMNS = [f.name for f in dataclasses.fields(Result)]


def results_csv(data: RunData) -> str:
    """One line per result row, with the truncation policy its sample recorded, in store order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*RESULT_COLUMNS, "truncation"])
    for row in data.results:
        meta = data.metadata.get(row.sample_id, {})
        writer.writerow([*("" if getattr(row, c) is None else getattr(row, c) for c in RESULT_COLUMNS),
                         meta.get("truncation", "")])  # fmt: skip
    return buffer.getvalue()


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _overall(table: ScoreTable) -> list[dict[str, Any]]:
    return [
        {
            "length": n,
            "mean": _round(c.mean),
            "ci_low": _round(c.low),
            "ci_high": _round(c.high),
            "tasks": c.tasks,
        }
        for n, c in table.overall.items()
    ]


def summary_dict(data: RunData, analyses: Analyses) -> dict[str, Any]:
    table = analyses.table
    summary: dict[str, Any] = {
        "run_dir": str(data.run_dir),
        "method": analyses.primary,  # the method the top-level numbers describe; by_method has every one
        "model": data.model,
        "state": data.state,
        "in_progress": data.in_progress,
        "rows": len(data.results),
        "threshold": table.threshold,
        "bootstrap": {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, "level": DEFAULT_LEVEL},
        "tasks": table.tasks,
        "lengths": table.lengths,
        "effective_length": {
            "overall": table.effective_length(),
            "per_task": {task: table.effective_length(task) for task in table.tasks},
        },
        "weighted_average": {
            "inc": _round(table.weighted("inc")),
            "dec": _round(table.weighted("dec")),
            "per_task": {
                t: {"inc": _round(table.weighted("inc", t)), "dec": _round(table.weighted("dec", t))}
                for t in table.tasks
            },  # fmt: skip
        },
        "totals": table.totals(),
        "overall": _overall(table),
        "cells": [
            {
                "method": method,
                "task": c.task,
                "length": c.length,
                "n": c.n,
                "mean": _round(c.mean),
                "ci_low": _round(c.low),
                "ci_high": _round(c.high),
                "failed": c.failed,
                "truncated": c.truncated,
                "skipped": c.skipped,
            }
            for method, t in analyses.tables.items()
            for c in sorted(t.cells.values(), key=lambda c: (c.task, c.length))
        ],  # fmt: skip
        "by_method": {
            method: {
                "effective_length": t.effective_length(),
                "weighted_average": {"inc": _round(t.weighted("inc")), "dec": _round(t.weighted("dec"))},
                "overall": _overall(t),
            }
            for method, t in analyses.tables.items()
        },  # fmt: skip
        "degradation": {
            name: {str(s.length): _round(s.relative) for s in result.steps}
            for name, result in [("overall", degradation(table.per_length()))]
            + [(t, degradation(table.per_length(t))) for t in table.tasks]
        },
        "depth_by_length": {
            grid.task: [
                {"depth": d, "length": n, "mean": _round(grid.mean(d, n)), "n": grid.n(d, n)}
                for d in grid.depths
                for n in grid.lengths
                if grid.n(d, n)
            ]
            for grid in depth_grids([r for r in data.series if r.method == analyses.primary], data.metadata)
        },  # fmt: skip
        "frontier": {cost: [dataclasses.asdict(p) for p in frontier(data.series, cost)] for cost in COSTS},
        "cost_model": None,
    }
    check = analyses.cost.overlay
    if check is not None:
        summary["cost_model"] = {
            "model": dataclasses.asdict(check.shape),
            "hardware": dataclasses.asdict(check.hardware),
            "prefill_mean_abs_error_percent": _round(check.mean_abs_error("prefill"), 2),
            "prefill_median_error_percent": _round(check.median_error("prefill"), 2),
            "kv_mean_abs_error_percent": _round(check.mean_abs_error("kv"), 2),
            "kv_median_error_percent": _round(check.median_error("kv"), 2),
            "per_length": [dataclasses.asdict(c) for c in check.per_length],
        }
    else:
        summary["cost_model_note"] = analyses.cost.note
    return summary


def config_dict(data: RunData) -> dict[str, Any]:
    return {"config": data.config, "model": data.model, "rerun": rerun_command(data)}


def write_exports(data: RunData, analyses: Analyses, folder: Path) -> list[Path]:
    files = {
        folder / "results.csv": results_csv(data),
        folder / "summary.json": json.dumps(summary_dict(data, analyses), indent=1, ensure_ascii=False)
        + "\n",
        folder / "config.json": json.dumps(config_dict(data), indent=1, ensure_ascii=False) + "\n",
    }
    for path, text in files.items():
        atomic_write_text(path, text)
    return list(files)

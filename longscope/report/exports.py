"""The files written beside a report: every result row as CSV, the report's numbers as JSON, the run config."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from longscope.analysis import intervals
from longscope.analysis.benchmarks import benchmark_reports
from longscope.analysis.degradation import degradation
from longscope.analysis.effective_length import DEFAULT_SHARE
from longscope.analysis.frontier import COSTS, frontier
from longscope.analysis.heatmap import depth_grids
from longscope.analysis.intervals import Interval
from longscope.analysis.paired import PairedDifference
from longscope.analysis.plane import difficulty_plane
from longscope.analysis.scores import ScoreTable, relative_base_lengths
from longscope.cache import atomic_write_text
from longscope.core import Result
from longscope.report import breakdowns as score_breakdowns
from longscope.report import judging as judge_section
from longscope.report import long_output
from longscope.report import probe as probe_section
from longscope.report import retrieval as retrieval_section
from longscope.report.load import RunData
from longscope.report.page import (
    AUC_RULE,
    INTERVAL_RULES,
    RELATIVE_RULE,
    Analyses,
    effective_rule,
    rerun_command,
    rerun_commands,
)

RESULT_COLUMNS = [f.name for f in dataclasses.fields(Result)]
# Read from the sample rather than the row: the realised length in characters, the measure that does not
# depend on a tokenizer.
SAMPLE_COLUMNS = ["realised_chars"]


def results_csv(data: RunData) -> str:
    """One line per result row in store order, with the sample's realised length in characters. Truncation is
    the policy the sample recorded where it did (what the score tables count), else the row's own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*RESULT_COLUMNS, *SAMPLE_COLUMNS])
    for row in data.results:
        meta = data.metadata.get(row.sample_id, {})
        values = {c: getattr(row, c) for c in RESULT_COLUMNS}
        values["truncation"] = meta.get("truncation") or row.truncation
        values.update({c: meta.get(c) for c in SAMPLE_COLUMNS})
        writer.writerow([_cell(v) for v in values.values()])
    return buffer.getvalue()


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text opening with =, +, -, @ (or a tab or carriage return,
    which some spreadsheets skip before those) gets a leading apostrophe. Numbers are written as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def interval_fields(iv: Interval) -> dict[str, Any]:
    """An interval as summary.json writes it: its ends, the rule that made it, or why there is none."""
    return {"low": _round(iv.low), "high": _round(iv.high), "interval": iv.kind, "reason": iv.reason or None}


def _overall(table: ScoreTable) -> list[dict[str, Any]]:
    return [
        {"length": n, "n": c.n, "tasks": c.tasks, "mean": _round(c.mean), **interval_fields(c.interval)}
        for n, c in table.overall.items()
    ]


def _auc(table: ScoreTable, task: str | None = None) -> dict[str, Any]:
    return {"value": _round(table.auc(task)), **interval_fields(table.auc_interval(task))}


def _curve(table: ScoreTable) -> dict[str, Any]:
    """What reads the mean-over-tasks curve of one table: RULER's and NoLiMa's lengths, the AUC, the wAvgs."""
    return {
        "effective_length": table.effective_length(),
        "effective_label": table.effective_label(),
        "relative_effective_length": table.relative_effective_length(),
        "auc": _auc(table),
        "weighted_average": {"inc": _round(table.weighted("inc")), "dec": _round(table.weighted("dec"))},
    }


def difference_dict(d: PairedDifference) -> dict[str, Any]:
    return {
        "other": d.other,
        "reference": d.reference,
        "length": d.length,  # null: every length together
        "n": d.n,
        "difference": _round(d.difference),
        "low": _round(d.low),
        "high": _round(d.high),
        "test": d.test,
        "p_value": d.p_value,
        "significant": bool(d.significant),
        "level": d.level,
        "reason": d.reason or None,
        "sentence": d.sentence(),
    }


def interval_settings(table: ScoreTable) -> dict[str, Any]:
    return {
        "level": table.level,
        "resamples": table.resamples,
        "seed": table.seed,
        "min_bootstrap": intervals.MIN_BOOTSTRAP,
        "rules": INTERVAL_RULES,
    }


def _plane(data: RunData, method: str) -> list[dict[str, Any]]:
    """Each task and length with its declared coordinates and, where its samples record their evidence, the
    measured ones (scope; diffusion by BM25, by the dense retriever, and their mean) and the distance."""
    plane = difficulty_plane([r for r in data.series if r.method == method], data.metadata)
    return [
        {
            "task": p.task,
            "length": p.length,
            "n": p.n,
            "declared": {"scope": p.scope, "diffusion": p.diffusion},
            "measured": None
            if not p.measured
            else {
                "scope": _round(p.measured_scope),
                "diffusion_bm25": _round(p.measured_diffusion_bm25),
                "diffusion_dense": _round(p.measured_diffusion_dense),
                "diffusion": _round(p.measured_diffusion),
                "distance": _round(p.distance),
            },
        }
        for length in plane.lengths
        for p in plane.points[length]
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
        "intervals": interval_settings(table),
        "tasks": table.tasks,
        "lengths": table.lengths,
        "effective_length": {
            "rule": effective_rule(table.threshold),
            "overall": table.effective_length(),
            "label": table.effective_label(),
            "per_task": {task: table.effective_length(task) for task in table.tasks},
            "labels": {task: table.effective_label(task) for task in table.tasks},
        },
        "relative_effective_length": {
            "rule": RELATIVE_RULE,
            "share": DEFAULT_SHARE,
            "base_lengths": 1,
            "overall": table.relative_effective_length(),
            "per_task": {task: table.relative_effective_length(task) for task in table.tasks},
            # how many shortest lengths each task's base averages (NoLiMa's runs: 3, as NoLiMa defines it)
            "per_task_base_lengths": {task: relative_base_lengths(task) for task in table.tasks},
        },
        "auc": {
            "rule": AUC_RULE,
            "overall": _auc(table),
            "per_task": {task: _auc(table, task) for task in table.tasks},
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
                **interval_fields(c.interval),
                "failed": c.failed,
                "truncated": c.truncated,
                "skipped": c.skipped,
            }
            for method, t in analyses.tables.items()
            for c in sorted(t.cells.values(), key=lambda c: (c.task, c.length))
        ],  # fmt: skip
        "by_method": {
            method: {**_curve(t), "overall": _overall(t)} for method, t in analyses.tables.items()
        },  # fmt: skip
        "paired": {
            "reference": analyses.primary,
            "differences": [difference_dict(d) for d in analyses.differences],
        },
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
        "plane": _plane(data, analyses.primary),
        "retrieval": retrieval_section.summary(data),
        # Each published benchmark as its paper prints it (LongBench: x100, 2 decimals, the mean of the datasets).
        "benchmarks": [
            {
                "name": report.name,
                "subsets": {
                    name: {"n": cell.n, "mean": _round(cell.mean)} for name, cell in report.subsets.items()
                },
                "printed": report.published_scores(),
                "printed_average": report.published_average(),
                "categories": report.category_scores(),
            }
            for report in benchmark_reports(data.series, data.metadata)
        ],
        "cost_model": None,
        "long_output": long_output.summary(data, table.level),
        "probe": probe_section.summary(data),  # null: no probe-ppl.json in the run directory
        "judging": judge_section.summary(data),  # null: nothing in the run was judged
        "score_by": score_breakdowns.summary(data, table.level),  # empty: no sample carries a difficulty key
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
    return {
        "config": data.config,
        "invocations": data.invocations,
        "model": data.model,
        "rerun": rerun_command(data),  # the first line alone, as before several invocations were recorded
        "rerun_all": rerun_commands(data),
    }


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

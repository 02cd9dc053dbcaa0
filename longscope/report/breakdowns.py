"""The report's "Score by …" entries: each task's score by the difficulty keys of the harder reading families
(overlap, level, rounds, operations), with n and an interval, for the page and for summary.json."""

from __future__ import annotations

from typing import Any

from longscope.analysis.breakdown import Breakdown, report_breakdowns
from longscope.analysis.scores import ScoreCell
from longscope.report import format as fmt
from longscope.report.load import RunData

# What each key measures, said once under its table.
MEANINGS = {
    "overlap": "the words the question shares with the asked latent needle, function words aside",
    "level": "the rung of the ladder the sample was built at (basic, easy, medium, hard)",
    "rounds": "MRCR: how often the asked request repeats in the conversation; common words: how many rounds "
    "of the word list the length fitted",
    "operations": "the operations in the chain that defines the asked quantity (gsm_graph)",
}


def _bound(data: RunData, level: float) -> list[Breakdown]:
    found = [b for b in report_breakdowns(data.results, data.metadata) if b.cells]
    for found_breakdown in found:
        for cell in found_breakdown.cells.values():
            cell.bound(level)
    return found


def _value_text(value: object) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def section(data: RunData, level: float = 0.95) -> list[dict[str, Any]]:
    """One table per key the run's samples carry: tasks down, the key's values across; empty when none does."""
    tables = []
    for found in _bound(data, level):
        legend = fmt.Legend(level)
        rows = []
        for task in found.tasks:
            cells = []
            for value in found.values:
                cell: ScoreCell | None = found.cells.get((task, value))
                if cell is None:
                    cells.append(None)
                    continue
                cells.append({"mean": fmt.score(cell.mean), **legend.cell(cell.interval), "n": cell.n})
            rows.append({"task": task, "cells": cells})
        tables.append(
            {
                "key": found.by,
                "meaning": MEANINGS.get(found.by, ""),
                "headers": [_value_text(v) for v in found.values],
                "rows": rows,
                "legend": legend.entries,
            }
        )
    return tables


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summary(data: RunData, level: float = 0.95) -> list[dict[str, Any]]:
    """The summary.json entry: per key, every task and value with its n, mean and interval (0-100)."""
    return [
        {
            "key": found.by,
            "cells": [
                {
                    "task": task,
                    "value": list(value) if isinstance(value, tuple) else value,
                    "n": cell.n,
                    "mean": _round(cell.mean),
                    "low": _round(cell.interval.low),
                    "high": _round(cell.interval.high),
                    "interval": cell.interval.kind,
                    "reason": cell.interval.reason or None,
                }
                for task in found.tasks
                for value in found.values
                for cell in [found.cells.get((task, value))]
                if cell is not None
            ],
        }
        for found in _bound(data, level)
    ]

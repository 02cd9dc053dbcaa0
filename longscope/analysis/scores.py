"""The one score table: mean score per series (task, method, mode, turn) and length with its interval, and the
rows that did not count. The CLI summary, `show`, the report, `compare`, the exports and the benchmark tables
all read scores through it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from longscope.analysis.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_ci,
    bootstrap_ci_of_group_means,
)
from longscope.analysis.effective_length import DEFAULT_THRESHOLD, effective_length
from longscope.analysis.weighting import weighted_average
from longscope.core import Result

# Truncation policies a sample may record; "none" means the sample fitted as built.
TRUNCATING = ("middle", "left", "right")
SKIPPING = "skip"


@dataclass
class ScoreCell:
    """One task at one length, scores on the 0-100 scale.

    ``failed`` rows raised and are not scored; ``truncated`` rows were scored on a cut context; ``skipped``
    samples were too long for their policy and never ran. Only scored rows enter the mean.
    """

    task: str = ""
    length: int = 0
    scores: list[float] = field(default_factory=list)
    failed: int = 0
    truncated: int = 0
    skipped: int = 0
    low: float | None = None
    high: float | None = None

    def add(self, row: Result, policy: str | None = None) -> None:
        """Count one row: scored (0-100), failed, truncated or skipped. ``policy`` is the truncation the row's
        sample records, when it is known apart from the row."""
        policy = policy or row.truncation or "none"
        if policy == SKIPPING or row.status == "skipped":
            self.skipped += 1
        elif row.status != "ok" or row.score is None:
            self.failed += 1
        else:
            self.truncated += policy != "none"
            self.scores.append(100.0 * float(row.score))

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


@dataclass
class OverallCell:
    """The mean over tasks at one length (each task weighs the same) and its stratified interval."""

    length: int
    mean: float | None
    low: float | None
    high: float | None
    tasks: int


@dataclass
class ScoreTable:
    tasks: list[str]
    lengths: list[int]
    cells: dict[tuple[str, int], ScoreCell]
    overall: dict[int, OverallCell]
    threshold: float

    def per_length(self, task: str | None = None) -> dict[int, float | None]:
        """Mean score by length, of one task or over tasks."""
        if task is None:
            return {length: self.overall[length].mean for length in self.lengths}
        return {
            length: self.cells[(task, length)].mean for length in self.lengths if (task, length) in self.cells
        }

    def effective_length(self, task: str | None = None) -> int | None:
        return effective_length(self.per_length(task), self.threshold)

    def weighted(self, direction: str, task: str | None = None) -> float | None:
        return weighted_average(self.per_length(task), direction)

    def totals(self) -> dict[str, int]:
        cells = self.cells.values()
        return {
            "scored": sum(c.n for c in cells),
            "failed": sum(c.failed for c in cells),
            "truncated": sum(c.truncated for c in cells),
            "skipped": sum(c.skipped for c in cells),
        }


def series_label(row: Result, with_method: bool = True) -> str:
    """A series names what one curve is drawn from: ``niah``, ``niah · snapkv:0.5``,
    ``niah_multikey(questions=5) · full · multi-turn · turn 2``. ``with_method`` False where a table holds one
    method only."""
    parts = [row.task]
    if with_method and (row.method != "full" or row.mode != "independent"):
        parts.append(row.method)
    if row.mode != "independent":
        parts.append(row.mode)
    if row.turn:
        parts.append(f"turn {row.turn + 1}")
    return " · ".join(parts)


def as_series(results: Iterable[Result], with_method: bool = True) -> list[Result]:
    """Copies of the rows whose task is their series label: what the per-row analyses (heatmaps, the plane,
    frontiers) group by, so that they keep methods, modes and turns apart without knowing about them."""
    return [dataclasses.replace(row, task=series_label(row, with_method)) for row in results]


def score_table(
    results: Iterable[Result],
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    method: str | None = None,
) -> ScoreTable:
    """Group rows by task and length, score them on 0-100 and bound each mean with a bootstrap interval.

    ``metadata`` maps sample ids to sample metadata, where the truncation policy applied is recorded.
    ``method`` keeps only that method's rows: two methods' scores of one cell are not one sample.
    """
    metadata = metadata or {}
    cells: dict[tuple[str, int], ScoreCell] = {}
    for row in results:
        if (method is not None and row.method != method) or not row.length:
            continue  # rows without a length are rejected benchmark records, reported with their benchmark
        task = series_label(row, with_method=method is None)
        cell = cells.get((task, row.length))
        if cell is None:
            cell = cells[(task, row.length)] = ScoreCell(task=task, length=row.length)
        cell.add(row, metadata.get(row.sample_id, {}).get("truncation"))
    for cell in cells.values():
        interval = bootstrap_ci(cell.scores, resamples=resamples, seed=seed)
        if interval is not None:
            cell.low, cell.high = interval
    tasks = sorted({task for task, _ in cells})
    lengths = sorted({length for _, length in cells})
    overall = {}
    for length in lengths:
        groups = [cells[(t, length)].scores for t in tasks if (t, length) in cells and cells[(t, length)].n]
        means = [sum(g) / len(g) for g in groups]
        interval = bootstrap_ci_of_group_means(groups, resamples=resamples, seed=seed)
        overall[length] = OverallCell(
            length=length,
            mean=sum(means) / len(means) if means else None,
            low=interval[0] if interval else None,
            high=interval[1] if interval else None,
            tasks=len(groups),
        )
    return ScoreTable(tasks=tasks, lengths=lengths, cells=cells, overall=overall, threshold=threshold)


def methods_of(results: Iterable[Result]) -> list[str]:
    """The methods a run used, the full cache (the baseline the others are read against) first."""
    found = {row.method for row in results}
    return sorted(found, key=lambda m: (m != "full", m))


@dataclass
class Summary:
    """A run's scores as the CLI prints them: one table per method (never pooled: two methods' scores of one
    cell are not one sample), and the rejected records that have no length."""

    tables: dict[str, ScoreTable]
    rejected: int = 0

    @property
    def primary(self) -> ScoreTable:
        """The reference method's table (full when the run has it)."""
        return next(iter(self.tables.values()))

    @property
    def empty(self) -> bool:
        return not any(table.cells for table in self.tables.values())

    def total(self, what: str) -> int:
        return sum(table.totals()[what] for table in self.tables.values())

    @property
    def failed(self) -> int:
        return self.total("failed")

    @property
    def skipped(self) -> int:
        return self.total("skipped") + self.rejected

    @property
    def truncated(self) -> int:
        return self.total("truncated")


def summarise(results: list[Result], threshold: float = DEFAULT_THRESHOLD) -> Summary:
    """Every method's table over ``results``, the reference (full) first."""
    tables = {m: score_table(results, threshold=threshold, method=m) for m in methods_of(results)}
    rejected = sum(1 for row in results if not row.length and row.status == "skipped")
    return Summary(tables=tables, rejected=rejected)

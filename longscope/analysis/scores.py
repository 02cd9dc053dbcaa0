"""The score table: mean score per task and length with bootstrap intervals, and what did not count."""

from __future__ import annotations

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

    task: str
    length: int
    scores: list[float] = field(default_factory=list)
    failed: int = 0
    truncated: int = 0
    skipped: int = 0
    low: float | None = None
    high: float | None = None

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


def truncation_of(meta: Mapping[str, Any]) -> str:
    value = meta.get("truncation") or "none"
    return str(value)


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
        key = (row.task, row.length)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = ScoreCell(task=row.task, length=row.length)
        policy = truncation_of(metadata.get(row.sample_id, {}))
        if policy == SKIPPING or row.status == "skipped":
            cell.skipped += 1
            continue
        if row.status != "ok" or row.score is None:
            cell.failed += 1
            continue
        if policy != "none":
            cell.truncated += 1
        cell.scores.append(100.0 * float(row.score))
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

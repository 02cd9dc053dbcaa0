"""The summary table: mean score per task and length, sample counts, failures, and the effective length."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from longscope.analysis.effective_length import DEFAULT_THRESHOLD, effective_length
from longscope.core import Result


@dataclass
class Cell:
    """Scores of one task at one length, on the 0-100 scale; failed samples count apart, not as zeros."""

    scores: list[float] = field(default_factory=list)
    failed: int = 0
    skipped: int = 0
    truncated: int = 0

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return 100.0 * sum(self.scores) / len(self.scores) if self.scores else None


@dataclass
class Summary:
    tasks: list[str]
    lengths: list[int]
    cells: dict[tuple[str, int], Cell]
    threshold: float
    # Rows with no length: records a benchmark loader rejected (skipped, each with its reason).
    unplaced: Cell = field(default_factory=Cell)

    def overall(self, length: int) -> float | None:
        """Mean over tasks at one length (each task weighs the same, whatever its sample count)."""
        means = [self.cells[(t, length)].mean for t in self.tasks if (t, length) in self.cells]
        means = [m for m in means if m is not None]
        return sum(means) / len(means) if means else None

    def effective_length(self, task: str | None = None) -> int | None:
        if task is None:
            per_length = {length: self.overall(length) for length in self.lengths}
        else:
            per_length = {
                length: self.cells[(task, length)].mean
                for length in self.lengths
                if (task, length) in self.cells
            }
        return effective_length(per_length, self.threshold)

    @property
    def failed(self) -> int:
        return sum(cell.failed for cell in self.cells.values())

    @property
    def skipped(self) -> int:
        return sum(cell.skipped for cell in self.cells.values()) + self.unplaced.skipped

    @property
    def truncated(self) -> int:
        return sum(cell.truncated for cell in self.cells.values())


def summarise(results: Iterable[Result], threshold: float = DEFAULT_THRESHOLD) -> Summary:
    cells: dict[tuple[str, int], Cell] = defaultdict(Cell)
    unplaced = Cell()
    for row in results:
        cell = cells[(row.task, row.length)] if row.length else unplaced
        if row.status == "skipped":
            cell.skipped += 1
        elif row.status == "ok" and row.score is not None:
            cell.scores.append(row.score)
            cell.truncated += bool(row.truncation and row.truncation != "none")
        else:
            cell.failed += 1
    tasks = sorted({task for task, _ in cells})
    lengths = sorted({length for _, length in cells})
    return Summary(tasks=tasks, lengths=lengths, cells=dict(cells), threshold=threshold, unplaced=unplaced)


@dataclass
class Breakdown:
    """Scores of each task split by the value of one sample metadata key (or by length)."""

    by: str | None
    metric: str | None
    tasks: list[str]
    values: list
    cells: dict[tuple[str, object], Cell]


def breakdown(
    results: Iterable[Result],
    metadata: dict[str, dict],
    *,
    by: str | None = None,
    metric: str | None = None,
) -> Breakdown:
    """Group finished rows by task and ``metadata[by]`` (length when ``by`` is None), scoring each row by its
    main score or, with ``metric``, by the scorer's sub-score of that name. Rows without the key are left out."""
    cells: dict[tuple[str, object], Cell] = defaultdict(Cell)
    for row in results:
        if row.status != "ok":
            continue
        if by is None:
            value: object = row.length
        else:
            meta = metadata.get(row.sample_id, {})
            if by not in meta:
                continue
            value = meta[by]
            value = tuple(value) if isinstance(value, list) else value
        number = row.score if metric is None else json.loads(row.details or "{}").get(metric)
        if number is None:
            continue
        cells[(row.task, value)].scores.append(float(number))
    tasks = sorted({task for task, _ in cells})
    values = sorted({value for _, value in cells}, key=lambda v: (str(type(v)), v))
    return Breakdown(by=by, metric=metric, tasks=tasks, values=values, cells=dict(cells))

"""The one score table: mean score per series (task, method, mode, turn) and length with its interval, and the
rows that did not count. The CLI summary, `show`, the report, `compare`, the exports and the benchmark tables
all read scores through it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longscope.analysis import intervals
from longscope.analysis.effective_length import (
    DEFAULT_SHARE,
    DEFAULT_THRESHOLD,
    area_under_curve,
    effective_length,
    length_label,
    relative_effective_length,
)
from longscope.analysis.intervals import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED, Interval
from longscope.analysis.paired import PairedDifference, method_differences
from longscope.analysis.weighting import weighted_average
from longscope.core import Result
from longscope.spec import format_length

# Truncation policies a sample may record; "none" means the sample fitted as built.
TRUNCATING = ("middle", "left", "right")
SKIPPING = "skip"


class Bounded:
    """A mean with its ``interval``: its ends read as ``low`` and ``high`` (None where there is none)."""

    interval: Interval

    @property
    def low(self) -> float | None:
        return self.interval.low

    @property
    def high(self) -> float | None:
        return self.interval.high


@dataclass
class ScoreCell(Bounded):
    """One task at one length, scores on the 0-100 scale.

    ``failed`` rows raised and are not scored; ``truncated`` rows were scored on a cut context; ``skipped``
    samples were too long for their policy and never ran. Only scored rows enter the mean. ``contexts`` names
    the context each score was asked of: questions sharing one are resampled together.
    """

    task: str = ""
    length: int = 0
    scores: list[float] = field(default_factory=list)
    failed: int = 0
    truncated: int = 0
    skipped: int = 0
    contexts: list[str] = field(default_factory=list)
    interval: Interval = field(default_factory=lambda: intervals.none("not computed"))

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
            self.contexts.append(row.sample_id)

    def bound(
        self, level: float = DEFAULT_LEVEL, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
    ):
        self.interval = intervals.mean_interval(
            self.scores, self.contexts, level=level, resamples=resamples, seed=seed
        )
        return self

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


@dataclass
class OverallCell(Bounded):
    """The mean over tasks at one length (each task weighs the same) and its stratified interval; ``n`` is the
    number of scored samples under it."""

    length: int
    mean: float | None
    interval: Interval
    tasks: int
    n: int = 0


def relative_base_lengths(task: str | None) -> int:
    """How many of the shortest lengths a task's relative effective length takes as its base: the task class's
    ``relative_base_lengths`` (NoLiMa: 3, its 250, 500 and 1K), else 1; 1 for the mean over tasks."""
    from longscope.tasks import TASKS

    name = (task or "").split(":", 1)[0].split("(", 1)[0]
    if name not in TASKS:
        return 1
    return int(getattr(TASKS.get(name), "relative_base_lengths", 1) or 1)


@dataclass
class ScoreTable:
    tasks: list[str]
    lengths: list[int]
    cells: dict[tuple[str, int], ScoreCell]
    overall: dict[int, OverallCell]
    threshold: float
    level: float = DEFAULT_LEVEL
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED

    def per_length(self, task: str | None = None) -> dict[int, float | None]:
        """Mean score by length, of one task or over tasks."""
        if task is None:
            return {length: self.overall[length].mean for length in self.lengths}
        return {
            length: self.cells[(task, length)].mean for length in self.lengths if (task, length) in self.cells
        }

    def effective_length(self, task: str | None = None) -> int | None:
        """RULER's: the largest length whose mean exceeds the threshold."""
        return effective_length(self.per_length(task), self.threshold)

    def effective_label(self, task: str | None = None) -> str:
        """RULER's label: ``4k``, ``>8k`` when the longest tested length passes, ``<1k`` when none does."""
        return length_label(self.per_length(task), self.threshold, format_length)

    def relative_effective_length(
        self, task: str | None = None, share: float = DEFAULT_SHARE, base_lengths: int | None = None
    ) -> int | None:
        """NoLiMa's: the longest length keeping ``share`` of the score over the shortest length(s): by default
        as many as the task declares (NoLiMa's own runs average three), else one."""
        if base_lengths is None:
            base_lengths = relative_base_lengths(task)
        return relative_effective_length(self.per_length(task), share, base_lengths)

    def auc(self, task: str | None = None) -> float | None:
        """The area under the score-length curve (log2 lengths), as a mean height on 0-100."""
        return area_under_curve(self.per_length(task))

    def auc_interval(self, task: str | None = None) -> Interval:
        """The AUC's interval: every cell under it resampled (by context) within itself, the curve redrawn;
        only when every cell has at least 10 samples."""
        names = self.tasks if task is None else [task]
        cells = [self.cells[(t, n)] for t in names for n in self.lengths if (t, n) in self.cells]
        cells = [c for c in cells if c.n]
        if not cells:
            return intervals.none("no scored samples")
        small = min(c.n for c in cells)
        if small < intervals.MIN_BOOTSTRAP:
            return intervals.none(f"a cell has {small} samples; the AUC gets an interval when every cell has "
                                  f"{intervals.MIN_BOOTSTRAP}")  # fmt: skip
        rng = np.random.default_rng(self.seed)
        draws = {
            (c.task, c.length): intervals.resampled_means(c.scores, c.contexts, self.resamples, rng)
            for c in cells
        }
        curves = []
        for i in range(self.resamples):
            per_length = {}
            for n in self.lengths:
                means = [draws[(t, n)][i] for t in names if (t, n) in draws]
                per_length[n] = sum(means) / len(means) if means else None
            curves.append(area_under_curve(per_length))
        low, high = intervals.percentile(np.asarray(curves), self.level)
        if high - low <= 1e-9:
            return intervals.collapsed(self.auc(task), [(c.scores, c.contexts) for c in cells], self.level)
        return Interval(low, high, "stratified bootstrap")

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
    # Only a conversation makes a turn's place matter; the questions of one context asked apart (independent,
    # multi-request) are samples of one series, resampled together by context.
    if row.turn and row.mode in ("multi-turn", "multi-turn-own"):
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
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    method: str | None = None,
) -> ScoreTable:
    """Group rows by series and length, score them on 0-100 and bound each mean with the interval that fits
    it (``intervals.mean_interval``), and each length's mean over tasks with the stratified bootstrap.

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
        cell.bound(level, resamples, seed)
    tasks = sorted({task for task, _ in cells})
    lengths = sorted({length for _, length in cells})
    overall = {}
    for length in lengths:
        scored = [cells[(t, length)] for t in tasks if (t, length) in cells and cells[(t, length)].n]
        means = [c.mean for c in scored]
        overall[length] = OverallCell(
            length=length,
            mean=sum(means) / len(means) if means else None,
            interval=intervals.stratified_interval(
                [(c.scores, c.contexts) for c in scored], level=level, resamples=resamples, seed=seed
            ),
            tasks=len(scored),
            n=sum(c.n for c in scored),
        )
    return ScoreTable(tasks=tasks, lengths=lengths, cells=cells, overall=overall, threshold=threshold,
                      level=level, resamples=resamples, seed=seed)  # fmt: skip


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
    differences: list[PairedDifference] = field(default_factory=list)  # each method against full

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
    differences = method_differences([r for r in results if r.length]) if "full" in tables else []
    return Summary(tables=tables, rejected=rejected, differences=differences)

"""Published benchmarks as their papers report them: per subset, the macro average, and the published breakdowns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from longscope.analysis.scores import ScoreCell
from longscope.core import Result


@dataclass
class BenchmarkReport:
    """One benchmark of a run: a row per subset (the task as configured), their macro average (each subset
    weighs the same, as LongBench averages its datasets), and each breakdown the benchmark publishes."""

    name: str
    subsets: dict[str, ScoreCell]
    breakdowns: dict[str, dict[Any, ScoreCell]]

    @property
    def average(self) -> float | None:
        means = [t.mean for t in self.subsets.values() if t.mean is not None]
        return sum(means) / len(means) if means else None

    def totals(self) -> dict[str, int]:
        return {
            "scored": sum(t.n for t in self.subsets.values()),
            "truncated": sum(t.truncated for t in self.subsets.values()),
            "skipped": sum(t.skipped for t in self.subsets.values()),
            "failed": sum(t.failed for t in self.subsets.values()),
        }


def _declared_breakdowns(benchmark: str) -> tuple[str, ...]:
    from longscope.tasks import TASKS

    if benchmark not in TASKS:
        return ()
    return tuple(getattr(TASKS.get(benchmark), "breakdowns", ()) or ())


def benchmark_reports(
    results: Iterable[Result], metadata: dict[str, dict[str, Any]]
) -> list[BenchmarkReport]:
    """Group the rows of published benchmarks (samples whose metadata names a benchmark, or rejected records
    of one) by benchmark; rows of synthetic tasks are left out."""
    reports: dict[str, BenchmarkReport] = {}
    for row in results:
        meta = metadata.get(row.sample_id, {})
        name = meta.get("benchmark") or (row.task.split(":", 1)[0] if meta.get("rejected") else None)
        if not name:
            continue
        report = reports.get(name)
        if report is None:
            report = reports[name] = BenchmarkReport(
                name, defaultdict(ScoreCell), defaultdict(lambda: defaultdict(ScoreCell))
            )
        report.subsets[row.task].add(row)
        for key in _declared_breakdowns(name):
            if key in meta and meta[key] is not None:
                value = meta[key]
                report.breakdowns[key][tuple(value) if isinstance(value, list) else value].add(row)
    return [reports[name] for name in sorted(reports)]

"""Published benchmarks as their papers report them: per subset, the macro average, and the published breakdowns."""

from __future__ import annotations

import dataclasses
import json
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

    def published_scores(self) -> dict[str, float | None] | None:
        """The score of each of the benchmark's own datasets as the benchmark prints it, or None for a
        benchmark without a printing rule (see ``PRINTED``). LongBench: the rows grouped by the sample's
        "dataset" (hotpotqa, hotpotqa_e...), whether the run named one dataset per task or ran them all as one,
        each printed as eval.py prints it, round(100 x mean, 2)."""
        rule = PRINTED.get(self.name)
        if rule is None:
            return None
        cells = self.breakdowns.get(rule.by, {}) if rule.by else self.subsets
        return {str(unit): published_score(self.name, cell.mean) for unit, cell in sorted(cells.items())}

    def published_average(self) -> float | None:
        """The average over the benchmark's datasets as it is printed: the mean of the printed dataset scores
        (each dataset weighs the same), rounded like them; None without a printing rule or any score."""
        printed = self.published_scores()
        if printed is None:
            return None
        values = [value for value in printed.values() if value is not None]
        return published_score(self.name, sum(values) / len(values)) if values else None

    def category_scores(self) -> dict[str, float | None] | None:
        """Each of the benchmark's categories (the loader's ``categories``: name -> its datasets) as the mean of
        its datasets' printed scores, in the loader's order, with the overall mean of the categories under
        ``"average"`` (HELMET's collect_results.py averages so); None for a benchmark without categories. A
        category none of whose datasets was scored is None and left out of the overall mean."""
        categories = _declared_categories(self.name)
        printed = self.published_scores()
        if not categories or printed is None:
            return None
        scores: dict[str, float | None] = {}
        for category, datasets in categories.items():
            values = [printed[d] for d in datasets if printed.get(d) is not None]
            scores[category] = published_score(self.name, sum(values) / len(values)) if values else None
        present = [value for value in scores.values() if value is not None]
        scores["average"] = published_score(self.name, sum(present) / len(present)) if present else None
        return scores

    def totals(self) -> dict[str, int]:
        return {
            "scored": sum(t.n for t in self.subsets.values()),
            "truncated": sum(t.truncated for t in self.subsets.values()),
            "skipped": sum(t.skipped for t in self.subsets.values()),
            "failed": sum(t.failed for t in self.subsets.values()),
        }


@dataclass(frozen=True)
class PrintRule:
    """How a benchmark prints its scores: on the 0-100 scale, rounded to ``decimals``, one per ``by`` (a
    sample metadata key naming the benchmark's dataset; "" for one per task of the run)."""

    decimals: int
    by: str = ""


# LongBench's eval.py prints round(100 * mean, 2) per dataset file (and LongBench-E per length range within).
PRINTED: dict[str, PrintRule] = {"longbench": PrintRule(decimals=2, by="dataset")}
# HELMET's tables give one decimal per dataset (its scores on the 0-100 scale).
PRINTED["helmet"] = PrintRule(decimals=1, by="dataset")


def published_score(benchmark: str, mean: float | None) -> float | None:
    """A mean on the 0-100 scale (a ``ScoreCell.mean``) as ``benchmark`` prints it: LongBench rounds to 2
    decimals with Python's round, as its eval.py does (HELMET to 1). A benchmark without a rule gets the mean
    unchanged."""
    rule = PRINTED.get(benchmark)
    if mean is None or rule is None:
        return mean
    return round(mean, rule.decimals)


def _declared_breakdowns(benchmark: str) -> tuple[str, ...]:
    from longscope.tasks import TASKS

    if benchmark not in TASKS:
        return ()
    return tuple(getattr(TASKS.get(benchmark), "breakdowns", ()) or ())


def _declared_categories(benchmark: str) -> dict[str, tuple[str, ...]]:
    from longscope.tasks import TASKS

    if benchmark not in TASKS:
        return {}
    return dict(getattr(TASKS.get(benchmark), "categories", None) or {})


def _declared_detail_scores(benchmark: str) -> tuple[str, ...]:
    from longscope.tasks import TASKS

    if benchmark not in TASKS:
        return ()
    return tuple(getattr(TASKS.get(benchmark), "detail_scores", ()) or ())


def _detail_score(row: Result, name: str) -> float | None:
    """A sub-score the row's details hold as a number in [0, 1] (a text there says why it was not computed)."""
    try:
        value = json.loads(row.details).get(name) if row.details else None
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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
        # Sub-scores a benchmark reports beside a dataset's own score (HELMET's citation recall and precision)
        # get cells of their own, "DATASET NAME", from the rows whose details hold them as numbers.
        rule = PRINTED.get(name)
        for detail in _declared_detail_scores(name) if rule is not None and meta.get(rule.by) else ():
            value = _detail_score(row, detail)
            if value is not None:
                cell = report.breakdowns[rule.by][f"{meta[rule.by]} {detail}"]
                cell.add(dataclasses.replace(row, score=value))
    return [reports[name] for name in sorted(reports)]

"""Score against what a method sends: sweeps over one setting (k, rounds, budget) and each method's input tokens
beside full context's, per task and length."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import mean
from typing import Any

from longscope.core import Result, UsageError
from longscope.spec import format_spec, parse_amount, parse_spec

FULL = "full"
# A method "matches" full context at a task and length when its mean score is at most this many points below;
# the report says which tasks a cheaper method matches and which it cannot.
MATCH_POINTS = 5.0


def _settings(label: str) -> tuple[str, dict[str, Any]] | None:
    """A method label as its name and every setting it names (parameters and the amount after the colon)."""
    try:
        spec = parse_spec(label, "method")
        return spec.name, {**spec.params, **parse_amount(spec.amount, f"method {label}")}
    except UsageError:
        return None


@dataclass(frozen=True)
class SweepPoint:
    """One method of a sweep at one length: its setting's value, mean score (0-100), mean input tokens over
    all its calls, mean output tokens and mean calls per answer."""

    value: float
    method: str
    score: float
    input_tokens: float
    output_tokens: float
    calls: float
    n: int

    @property
    def total_tokens(self) -> float:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Sweep:
    """Methods of one name that differ only in ``setting``: ``series`` names them with that setting left out."""

    series: str
    setting: str
    length: int
    points: tuple[SweepPoint, ...]  # ascending in the setting's value


def _mean_over_tasks(rows: list[Result], field: str) -> float:
    """The mean over tasks of each task's mean of ``field``: a task with more samples does not weigh more."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        value = getattr(row, field)
        if value is not None:
            by_task[row.task].append(float(value))
    return mean(mean(values) for values in by_task.values()) if by_task else 0.0


def _scored(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status == "ok" and r.score is not None]


def sweeps(results: Iterable[Result]) -> list[Sweep]:
    """Every set of two or more methods that share a name and all settings but one numeric one, per length.

    ``rag-bm25(k=1)`` … ``rag-bm25(k=32)`` form the series ``rag-bm25`` over ``k``; ``rag-iterative(rounds=n)``
    one over ``rounds``; ``truncate:budget=N`` one over ``budget``. A method that differs from the others in
    two settings at once belongs to no series: its points would mix two effects.
    """
    rows = _scored(results)
    by_method: dict[str, list[Result]] = defaultdict(list)
    for row in rows:
        by_method[row.method].append(row)
    named: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for method in by_method:
        parsed = _settings(method)
        if parsed is not None:
            named[parsed[0]].append((method, parsed[1]))
    found: list[Sweep] = []
    for name, members in sorted(named.items()):
        keys = {key for _, settings in members for key in settings}
        for setting in sorted(keys):
            groups: dict[str, list[tuple[float, str]]] = defaultdict(list)
            for method, settings in members:
                value = settings.get(setting)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                rest = {k: v for k, v in sorted(settings.items()) if k != setting}
                groups[format_spec(name, rest)].append((float(value), method))
            for series, values in sorted(groups.items()):
                if len({v for v, _ in values}) < 2:
                    continue
                lengths = sorted({r.length for _, m in values for r in by_method[m]})
                for length in lengths:
                    points = []
                    for value, method in sorted(values):
                        at = [r for r in by_method[method] if r.length == length]
                        if not at:
                            continue
                        points.append(
                            SweepPoint(
                                value=value,
                                method=method,
                                score=100.0 * _mean_over_tasks(at, "score"),
                                input_tokens=_mean_over_tasks(at, "input_tokens"),
                                output_tokens=_mean_over_tasks(at, "output_tokens"),
                                calls=_mean_over_tasks(at, "calls") or 1.0,
                                n=len(at),
                            )
                        )
                    if len(points) >= 2:
                        found.append(Sweep(series, setting, length, tuple(points)))
    return found


@dataclass(frozen=True)
class VersusFull:
    """One method at one task and length beside full context on the same task and length."""

    task: str
    length: int
    method: str
    score: float  # 0-100
    input_tokens: float
    full_score: float
    full_input_tokens: float
    retrieval_recall: float | None

    @property
    def token_share(self) -> float:
        """The method's input tokens as a share of full context's (calls summed)."""
        return self.input_tokens / self.full_input_tokens if self.full_input_tokens else 0.0

    @property
    def gap(self) -> float:
        """Points the method scores above (positive) or below full context."""
        return self.score - self.full_score

    @property
    def matches_full(self) -> bool:
        return self.gap >= -MATCH_POINTS


def versus_full(results: Iterable[Result]) -> list[VersusFull]:
    """Every method other than full context whose rows share a task and length with full context's, with the
    mean score and mean input tokens of each, ordered by task, length and method."""
    cells: dict[tuple[str, int, str], list[Result]] = defaultdict(list)
    for row in _scored(results):
        cells[(row.task, row.length, row.method)].append(row)
    out = []
    for (task, length, method), rows in sorted(cells.items()):
        full = cells.get((task, length, FULL))
        if method == FULL or not full:
            continue
        recalls = [r.retrieval_recall for r in rows if r.retrieval_recall is not None]
        out.append(
            VersusFull(
                task=task,
                length=length,
                method=method,
                score=100.0 * mean(float(r.score) for r in rows),
                input_tokens=mean(float(r.input_tokens or 0) for r in rows),
                full_score=100.0 * mean(float(r.score) for r in full),
                full_input_tokens=mean(float(r.input_tokens or 0) for r in full),
                retrieval_recall=mean(recalls) if recalls else None,
            )
        )
    return out

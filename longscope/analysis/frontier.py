"""Accuracy against cost: each method's mean score and mean cost per length, and which points are dominated."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from longscope.analysis.intervals import Interval, none, stratified_interval
from longscope.core import Result

# Cost measures a row carries, with the words the report uses for them.
COSTS = {
    "kv_bytes": "KV-cache bytes held",
    "prefill_s": "time to first token (s)",
    "input_tokens": "input tokens sent",
}


def dominated(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, score) points, whether another point is at least as cheap and at least as good, and
    strictly better in one of the two. Identical points do not dominate each other."""
    flags = []
    for i, (cost, score) in enumerate(points):
        flags.append(
            any(
                j != i and c <= cost and s >= score and (c < cost or s > score)
                for j, (c, s) in enumerate(points)
            )
        )
    return flags


@dataclass(frozen=True)
class FrontierPoint:
    method: str
    length: int
    cost: float
    score: float
    n: int
    dominated: bool
    interval: Interval = field(default_factory=lambda: none("not computed"))  # of the score, over tasks


def frontier(results: Iterable[Result], cost: str) -> list[FrontierPoint]:
    """One point per method and length: the mean over tasks of each task's mean score, against the mean cost.

    Dominance is judged among the points of one length only: methods compete on the same inputs, while a
    shorter context is not an option a user with a long document has.
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {sorted(COSTS)}, got {cost!r}")
    scores: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    contexts: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    costs: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in results:
        value = getattr(row, cost)
        if row.status != "ok" or row.score is None or value is None:
            continue
        scores[(row.method, row.length, row.task)].append(100.0 * float(row.score))
        contexts[(row.method, row.length, row.task)].append(row.sample_id)
        costs[(row.method, row.length)].append(float(value))
    points = []
    for (method, length), values in sorted(costs.items()):
        keys = [key for key in scores if key[:2] == (method, length)]
        task_means = [sum(scores[k]) / len(scores[k]) for k in keys]
        points.append(
            FrontierPoint(
                method,
                length,
                sum(values) / len(values),
                sum(task_means) / len(task_means),
                len(values),
                False,
                stratified_interval([(scores[k], contexts[k]) for k in keys]),
            )
        )
    flagged = []
    for length in sorted({p.length for p in points}):
        group = [p for p in points if p.length == length]
        for point, flag in zip(group, dominated([(p.cost, p.score) for p in group]), strict=True):
            flagged.append(FrontierPoint(**{**point.__dict__, "dominated": flag}))
    return flagged

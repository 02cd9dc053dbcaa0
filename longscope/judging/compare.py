"""Two judges on the same outputs: how often they give the same grades, and their paired difference."""

from __future__ import annotations

import json
from dataclasses import dataclass

from longscope.analysis.paired import Pair, PairedDifference, paired_difference
from longscope.core import Result


@dataclass(frozen=True)
class JudgeAgreement:
    """``n`` outputs graded by both; ``same_items``: the share of checklist items given the same grade;
    ``within_quarter``: the share of outputs whose scores differ by at most 0.25; ``difference``: the second
    judge's scores against the first's, paired by output."""

    first: str
    second: str
    n: int
    items: int
    same_items: float | None
    within_quarter: float | None
    difference: PairedDifference

    def sentence(self) -> str:
        if not self.n:
            return f"{self.second} and {self.first} graded no output in common"
        return (
            f"{self.second} against {self.first} on {self.n} outputs: the same grade on "
            f"{self.same_items:.0%} of {self.items} checklist items, scores within 0.25 on "
            f"{self.within_quarter:.0%} of outputs; {self.difference.sentence()}"
        )


def _grades(row: Result) -> list[float]:
    try:
        return list(json.loads(row.details or "{}").get("item_grades", []))
    except ValueError:
        return []


def agreement(first: list[Result], second: list[Result], first_name: str, second_name: str) -> JudgeAgreement:
    """Rows of the same outputs (sample, mode, turn and method) graded by two judges; failed rows left out."""

    def key(row: Result) -> tuple:
        return (row.sample_id, row.mode, row.turn, row.method.split("@judge:")[0])

    graded = {key(r): r for r in first if r.status == "ok" and r.score is not None}
    pairs, same, items, close = [], 0, 0, 0
    for row in second:
        mine = graded.get(key(row))
        if mine is None or row.status != "ok" or row.score is None:
            continue
        pairs.append(Pair(100.0 * mine.score, 100.0 * row.score, row.sample_id))
        a, b = _grades(mine), _grades(row)
        if len(a) == len(b):
            items += len(a)
            same += sum(1 for x, y in zip(a, b, strict=True) if x == y)
        close += abs(mine.score - row.score) <= 0.25 + 1e-9
    n = len(pairs)
    return JudgeAgreement(
        first=first_name,
        second=second_name,
        n=n,
        items=items,
        same_items=same / items if items else None,
        within_quarter=close / n if n else None,
        difference=paired_difference(pairs, other=second_name, reference=first_name),
    )

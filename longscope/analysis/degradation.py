"""Degradation: the score at each length relative to the score at the shortest length that has one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One length's score, its ratio to the base score and the points lost since the base length."""

    length: int
    score: float | None
    relative: float | None  # score / base score; 1.0 means nothing lost
    drop: float | None  # base score - score, in score points


@dataclass(frozen=True)
class Degradation:
    base_length: int | None
    base_score: float | None
    steps: list[Step]

    def relative(self) -> dict[int, float | None]:
        return {step.length: step.relative for step in self.steps}


def degradation(scores: Mapping[int, float | None]) -> Degradation:
    """Each length's score against the shortest length with a score.

    A ratio to a base of zero is undefined, so it is left None while the drop in points is still given.
    """
    lengths = sorted(scores)
    measured = [length for length in lengths if scores[length] is not None]
    if not measured:
        return Degradation(None, None, [Step(length, None, None, None) for length in lengths])
    base_length = measured[0]
    base = float(scores[base_length])
    steps = []
    for length in lengths:
        score = scores[length]
        if score is None:
            steps.append(Step(length, None, None, None))
            continue
        relative = score / base if base > 0 else None
        steps.append(Step(length, float(score), relative, base - score))
    return Degradation(base_length, base, steps)

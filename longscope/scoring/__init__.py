"""Scorers by name: each turns a prediction and the gold answers into a score in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from longscope.core import Registry

Scorer = Callable[[str, Sequence[str]], float]

SCORERS: Registry[Scorer] = Registry("scorer")


def score(name: str, prediction: str, answers: Sequence[str]) -> float:
    return SCORERS.get(name)(prediction, answers)


# Importing a member registers it.
from longscope.scoring import containment  # noqa: E402,F401

"""Scorers by name: each turns a prediction and the gold answers into a score in [0, 1]."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Sequence

from longscope.core import Registry

# A scorer returns the score in [0, 1], or the score and named sub-scores (kept in the row's details).
Scorer = Callable[[str, Sequence[str]], float | tuple[float, dict[str, float]]]

SCORERS: Registry[Scorer] = Registry("scorer")


def score_with_details(
    name: str, prediction: str, answers: Sequence[str], meta: dict | None = None
) -> tuple[float, dict[str, float]]:
    """Score one prediction. A scorer that declares a ``meta`` parameter also gets the sample's metadata
    (a benchmark's class list, its keywords...); the others see only the prediction and the answers."""
    scorer = SCORERS.get(name)
    if "meta" in inspect.signature(scorer).parameters:
        value = scorer(prediction, answers, meta=meta or {})
    else:
        value = scorer(prediction, answers)
    if isinstance(value, tuple):
        return float(value[0]), dict(value[1])
    return float(value), {}


def score(name: str, prediction: str, answers: Sequence[str], meta: dict | None = None) -> float:
    return score_with_details(name, prediction, answers, meta)[0]


# Importing a member registers it: one file per metric family.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

"""Scorers by name: each turns a prediction and the gold answers into a score in [0, 1]."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Sequence

from longscope.core import Registry, Turn

# A scorer returns the score in [0, 1], or the score and named sub-scores (kept in the row's details). A
# detail may also be text: "reason" says why a prediction scored 0 where the benchmark's own code would fail
# or refuse to score it.
Details = dict[str, float | str]
Scorer = Callable[[str, Sequence[str]], float | tuple[float, Details]]

SCORERS: Registry[Scorer] = Registry("scorer")


def score_with_details(
    name: str,
    prediction: str,
    answers: Sequence[str],
    meta: dict | None = None,
    forbidden: Sequence[str] = (),
) -> tuple[float, Details]:
    """Score one prediction. A scorer that declares a ``meta`` parameter also gets the sample's metadata
    (a benchmark's class list, its keywords...), one that declares ``forbidden`` the known-false values; the
    others see only the prediction and the answers."""
    scorer = SCORERS.get(name)
    accepts = inspect.signature(scorer).parameters
    extra: dict = {}
    if "meta" in accepts:
        extra["meta"] = meta or {}
    if "forbidden" in accepts:
        extra["forbidden"] = tuple(forbidden)
    elif forbidden:
        # Dropping them would score a reply that names a false value as right.
        raise ValueError(f"scorer {name!r} takes no forbidden values, but {len(forbidden)} were given")
    value = scorer(prediction, answers, **extra)
    if isinstance(value, tuple):
        return float(value[0]), dict(value[1])
    return float(value), {}


def score_turn(metric: str, prediction: str, turn: Turn, metadata: dict) -> tuple[float, Details]:
    """Score a prediction for one turn of a sample: its gold answers, its forbidden values, the metadata."""
    return score_with_details(metric, prediction, turn.answers, metadata, turn.forbidden)


def score(
    name: str,
    prediction: str,
    answers: Sequence[str],
    meta: dict | None = None,
    forbidden: Sequence[str] = (),
) -> float:
    return score_with_details(name, prediction, answers, meta, forbidden)[0]


# Importing a member registers it: one file per metric family.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

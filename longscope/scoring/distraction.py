"""Scoring with forbidden answers: the gold strings must be given and none of the known-false ones."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS

# Answers that start with this marker are forbidden values (a distractor's false value), not gold: a task
# passes them as e.g. ("4821337", "!forbidden:4821373", "!forbidden:4812337"). No gold answer starts with "!".
FORBIDDEN = "!forbidden:"


def forbidden(value: str) -> str:
    """The answers-tuple entry that forbids ``value``."""
    return FORBIDDEN + value


def split_answers(answers: Sequence[str]) -> tuple[list[str], list[str]]:
    """(gold strings, forbidden strings) of an answers tuple."""
    gold = [a for a in answers if not a.startswith(FORBIDDEN)]
    bad = [a[len(FORBIDDEN) :] for a in answers if a.startswith(FORBIDDEN)]
    return gold, bad


@SCORERS.register("contains_only")
def contains_only(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Share of the gold strings found in the prediction (case-insensitive), times 0 if any forbidden string
    (an entry written ``"!forbidden:" + value``) is found too: naming every candidate earns nothing.
    Sub-scores: ``found`` (the share of gold found, forbidden aside) and ``forbidden`` (1 if any was given)."""
    gold, bad = split_answers(answers)
    if not gold:
        return 0.0, {"found": 0.0, "forbidden": 0.0}
    text = prediction.lower()
    found = sum(answer.lower() in text for answer in gold) / len(gold)
    given_bad = any(value.lower() in text for value in bad if value)
    return (0.0 if given_bad else found), {"found": found, "forbidden": float(given_bad)}

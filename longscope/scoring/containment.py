"""RULER's string-match metrics: case-insensitive containment of the gold strings in the prediction."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


@SCORERS.register("contains_all")
def contains_all(prediction: str, answers: Sequence[str]) -> float:
    """Share of the gold strings found in the prediction (RULER's ``string_match_all``, for needle tasks)."""
    if not answers:
        return 0.0
    text = prediction.lower()
    return sum(answer.lower() in text for answer in answers) / len(answers)


@SCORERS.register("contains_any")
def contains_any(prediction: str, answers: Sequence[str]) -> float:
    """1 if any gold string is in the prediction (RULER's ``string_match_part``, for QA tasks)."""
    text = prediction.lower()
    return float(any(answer.lower() in text for answer in answers))

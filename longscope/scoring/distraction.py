"""Scoring with forbidden answers: the gold strings must be given and none of the known-false ones."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


@SCORERS.register("contains_only")
def contains_only(
    prediction: str, answers: Sequence[str], forbidden: Sequence[str] = ()
) -> tuple[float, dict[str, float]]:
    """Share of the gold strings found in the prediction (case-insensitive), times 0 if any ``forbidden`` value
    (a turn's known-false values) is found too: naming every candidate earns nothing.
    Sub-scores: ``found`` (the share of gold found, forbidden aside) and ``forbidden`` (1 if any was given)."""
    if not answers:
        return 0.0, {"found": 0.0, "forbidden": 0.0}
    text = prediction.lower()
    found = sum(answer.lower() in text for answer in answers) / len(answers)
    given_bad = any(value.lower() in text for value in forbidden if value)
    return (0.0 if given_bad else found), {"found": found, "forbidden": float(given_bad)}

"""Set-based scoring of named ids: the F1 of the ids a reply names against the gold ids (span finding)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

# An id is a run of digits standing alone ("[40213]", "40213,", "passage 40213"); digits inside a word
# ("P7x", "2nd") are not ids.
_ID = re.compile(r"(?<![\w.])\d+(?![\w])")


def named_ids(text: str) -> set[str]:
    """Every id written in ``text``, leading zeros dropped (so "007" and "7" are one id)."""
    return {match.lstrip("0") or "0" for match in _ID.findall(text)}


@SCORERS.register("id_set_f1")
def id_set_f1(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """F1 of the set of ids the prediction names against the gold ids (one per answer), order and repeats
    aside. Sub-scores: ``precision``, ``recall`` and ``exact`` (1 when the two sets are equal)."""
    gold = set().union(*(named_ids(answer) for answer in answers)) if answers else set()
    given = named_ids(prediction)
    right = len(gold & given)
    if not gold or not right:
        return 0.0, {"precision": 0.0, "recall": 0.0, "exact": float(bool(gold) and given == gold)}
    precision, recall = right / len(given), right / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    return f1, {"precision": precision, "recall": recall, "exact": float(given == gold)}

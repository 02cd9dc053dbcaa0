"""Per-item scorers: one exact label, or the share of numbered "N: answer" lines that are right."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

# "3: 12", "3. 12", "3) 12", "Item 3: 12", "**3:** 12"; the number must open the line.
_NUMBERED = re.compile(r"^[\s*#>-]*(?:item\s*)?(\d+)\s*\**\s*[:.)=-]\s*\**\s*(.*?)\s*$", re.IGNORECASE)
# Marks a model may wrap an answer in, or end it with; none is part of any gold answer.
_WRAPPING = " \t.,;:!?'\"`*_()[]"


def normalise(answer: str) -> str:
    """Lower case, single spaces, no wrapping quotes or trailing full stop: "'NRETNAL'." -> "nretnal"."""
    return " ".join(answer.strip(_WRAPPING).lower().split())


def numbered_lines(text: str) -> dict[int, str]:
    """The answer given for each item number; the first line for a number counts, as a reader would mark it."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = _NUMBERED.match(line)
        if match and int(match.group(1)) not in found:
            found[int(match.group(1))] = match.group(2)
    return found


def _matches(given: str, want: str) -> bool:
    """The whole answer matches, or, for a one-word gold, the answer's first word does ("B) hammer" is B)."""
    want = normalise(want)
    if normalise(given) == want:
        return True
    words = given.split()
    return " " not in want and bool(words) and normalise(words[0]) == want


@SCORERS.register("numbered_items")
def numbered_items(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Share of the gold "N: answer" items whose line "N: ..." in the prediction matches, case and spacing
    aside. Sub-score ``answered``: share of asked items given any line at all (format kept, right or not)."""
    gold = numbered_lines("\n".join(answers))
    if not gold:
        return 0.0, {"answered": 0.0}
    given = numbered_lines(prediction)
    right = sum(number in given and _matches(given[number], want) for number, want in gold.items())
    answered = sum(number in given and bool(normalise(given[number])) for number in gold)
    return right / len(gold), {"answered": answered / len(gold)}


@SCORERS.register("exact_label")
def exact_label(prediction: str, answers: Sequence[str]) -> float:
    """1 if the prediction's first word is a gold label (case aside): "tavrol" and " Tavrol." count,
    "tavrol or kesmin" counts (its first word), "I think tavrol" does not. A repeated "Label:" is skipped."""
    words = prediction.split()
    if words and normalise(words[0]) == "label":
        words = words[1:]
    if not words:
        return 0.0
    first = normalise(words[0])
    return float(any(first == normalise(answer) for answer in answers))

"""Numeric answers: the first number in the prediction against the gold number (counts, sums, aggregates)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

# A signed number with optional thousands separators and decimals: "12", "-3", "1,234", "3.50".
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")


def first_number(text: str) -> float | None:
    """The first number written in digits in ``text``, or None; words such as "twelve" are not read."""
    match = _NUMBER.search(text)
    return None if match is None else float(match.group().replace(",", ""))


@SCORERS.register("exact_number")
def exact_number(prediction: str, answers: Sequence[str]) -> float:
    """1 if the first number in the prediction equals a gold number, whatever words surround it.

    An integer gold needs the same value exactly ("12 times", "12.0" and "12" all match 12); a gold written
    with a decimal point is matched within a relative tolerance of 1e-2, since aggregates get rounded.
    """
    got = first_number(prediction)
    if got is None:
        return 0.0
    for answer in answers:
        gold = first_number(answer)
        if gold is None:
            continue
        if "." in answer:
            if abs(got - gold) <= 1e-2 * max(abs(gold), 1e-12):
                return 1.0
        elif got == gold:
            return 1.0
    return 0.0

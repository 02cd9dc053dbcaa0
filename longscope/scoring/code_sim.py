"""LongBench's code-completion score: fuzzy similarity of the first code line predicted to the gold line."""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz

from longscope.scoring import SCORERS

_SKIPPED_OPENINGS = ("```", "#", "//")


def first_code_line(prediction: str) -> str:
    """The first line that is not blank, a code fence (```python) or a comment (# or //), as written;
    "" if there is none."""
    for line in prediction.splitlines():
        opening = line.lstrip()
        if opening and not opening.startswith(_SKIPPED_OPENINGS):
            return line
    return ""


@SCORERS.register("code_sim")
def code_sim(prediction: str, answers: Sequence[str]) -> float:
    """rapidfuzz's ``fuzz.ratio`` (normalised Indel similarity, 0..100) / 100 between the first code line of
    the prediction and the gold line, best over the golds; leading indentation counts as written."""
    line = first_code_line(prediction)
    if not line:
        return 0.0
    return max((fuzz.ratio(line, answer) / 100 for answer in answers), default=0.0)

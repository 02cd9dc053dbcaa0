"""LongBench's code-completion score (its ``code_sim_score``): fuzzy similarity of the first code line predicted
to the gold line, as fuzzywuzzy's ``fuzz.ratio`` computes it."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from longscope.scoring import SCORERS

# A line holding any of these, anywhere, is passed over as a fence or a comment.
_SKIPPED_MARKS = ("`", "#", "//")


def first_code_line(prediction: str) -> str:
    """The line LongBench compares: after leading newlines, the first line (split at "\\n" only) that holds no
    backtick, no "#" and no "//" anywhere in it, as written; "" if every line holds one.

    A blank line is a line like any other: "```python\\n\\nreturn x" gives "". A line such as
    ``url = "http://host"`` or ``s = "#"`` is passed over, as LongBench passes it over."""
    for line in prediction.lstrip("\n").split("\n"):
        if not any(mark in line for mark in _SKIPPED_MARKS):
            return line
    return ""


def fuzz_ratio(first: str, second: str) -> int:
    """fuzzywuzzy's ``fuzz.ratio`` as LongBench's requirements install it (fuzzywuzzy without
    python-Levenshtein, so difflib's matcher): 100 for equal strings, 0 when either is empty, else
    difflib's ``SequenceMatcher(None, first, second).ratio()`` times 100, rounded to a whole number (half to
    even)."""
    if first == second:
        return 100
    if not first or not second:
        return 0
    return int(round(100 * SequenceMatcher(None, first, second).ratio()))


@SCORERS.register("code_sim")
def code_sim(prediction: str, answers: Sequence[str]) -> float:
    """LongBench's code similarity: ``fuzz_ratio`` of ``first_code_line(prediction)`` and the gold line, over
    100 (so two decimals: 0.67, not 0.6667), the best over the golds. Leading indentation counts as written.

    difflib's matcher takes the longest matching block first, which is not always the longest common
    subsequence: "x0x" against "0[nx" scores 0.29 here (and in LongBench), where an edit-distance ratio gives
    0.57. With python-Levenshtein installed, fuzzywuzzy uses the edit-distance ratio instead, so a LongBench
    run made with it can differ on such lines."""
    line = first_code_line(prediction)
    return max((fuzz_ratio(line, answer) / 100 for answer in answers), default=0.0)

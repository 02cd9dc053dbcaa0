"""LongBench's synthetic-task scores (its ``retrieval_score``, ``retrieval_zh_score`` and ``count_score``):
paragraph retrieval in English and Chinese, and passage counting.

Each is the share of the digit runs in the prediction that equal the gold number, compared as text: "07" is
not "7" and "Paragraph 012" is not paragraph 12, as in LongBench. A prediction naming several numbers is
diluted; one with no digits scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

_DIGITS = re.compile(r"\d+")  # as LongBench's: any Unicode digits, so "７" is a run too (and not "7")
_PARAGRAPH_EN = re.compile(r"Paragraph (\d+)")
_PARAGRAPH_ZH = re.compile(r"段落(\d+)")


def _share_equal(prediction: str, gold: str) -> float:
    """Share of the digit runs in the prediction that are the text ``gold``; 0 with none."""
    runs = _DIGITS.findall(prediction)
    return sum(run == gold for run in runs) / len(runs) if runs else 0.0


def _best_labelled(
    prediction: str, answers: Sequence[str], label: re.Pattern[str], shape: str
) -> tuple[float, dict[str, str]]:
    """The best share over the golds, each gold's number being the first run after its label. LongBench fails
    on a gold without the label (it takes the first match of none); such a gold scores 0 here, and the
    reason goes into the details."""
    best, details = 0.0, {}
    for answer in answers:
        labelled = label.search(answer)
        if labelled is None:
            details["reason"] = f"gold {answer!r} is not of the form {shape!r}: LongBench's code fails on it"
            continue
        best = max(best, _share_equal(prediction, labelled.group(1)))
    return best, details


@SCORERS.register("retrieval")
def retrieval(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, str]]:
    """Gold "Paragraph 12" (exactly "Paragraph", one space, digits): the share of the digit runs in the
    prediction that are "12"; "Paragraph 012" or "Paragraph 120" are not."""
    return _best_labelled(prediction, answers, _PARAGRAPH_EN, "Paragraph N")


@SCORERS.register("retrieval_zh")
def retrieval_zh(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, str]]:
    """Gold "段落12": as ``retrieval``, the share of the digit runs in the prediction that are "12"."""
    return _best_labelled(prediction, answers, _PARAGRAPH_ZH, "段落N")


@SCORERS.register("count")
def count(prediction: str, answers: Sequence[str]) -> float:
    """Gold is a count such as "7": the share of the digit runs in the prediction that are exactly the gold
    text ("07" and "7.0" are not "7": the first has one run "07", the second the runs "7" and "0")."""
    return max((_share_equal(prediction, answer) for answer in answers), default=0.0)

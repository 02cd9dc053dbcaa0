"""LongBench's synthetic-task scores: paragraph retrieval (English, Chinese) and passage counting."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

_DIGITS = re.compile(r"\d+")
_COUNT = re.compile(r"(\d+)")
_PARAGRAPH_EN = re.compile(r"Paragraph\s*(\d+)", re.IGNORECASE)
_PARAGRAPH_ZH = re.compile(r"段落\s*(\d+)")


def _share_equal(prediction: str, gold: int | None) -> float:
    """Share of the digit runs in the prediction whose value is ``gold``; 0 with no number or no gold."""
    numbers = [int(run) for run in _DIGITS.findall(prediction)]
    if gold is None or not numbers:
        return 0.0
    return sum(number == gold for number in numbers) / len(numbers)


def _gold_number(answer: str, label: re.Pattern[str]) -> int | None:
    """The number after the label ("Paragraph 12" -> 12); a gold without the label falls back to its first
    digit run, and a gold with no digits gives None."""
    labelled = label.search(answer)
    if labelled is not None:
        return int(labelled.group(1))
    bare = _DIGITS.search(answer)
    return None if bare is None else int(bare.group())


def _best(prediction: str, answers: Sequence[str], label: re.Pattern[str]) -> float:
    return max((_share_equal(prediction, _gold_number(answer, label)) for answer in answers), default=0.0)


@SCORERS.register("retrieval")
def retrieval(prediction: str, answers: Sequence[str]) -> float:
    """Gold "Paragraph 12": the share of the numbers in the prediction that are 12 (naming several paragraphs
    dilutes the score), 0 if the prediction has no number."""
    return _best(prediction, answers, _PARAGRAPH_EN)


@SCORERS.register("retrieval_zh")
def retrieval_zh(prediction: str, answers: Sequence[str]) -> float:
    """Gold "段落12": as ``retrieval``, the share of the numbers in the prediction that are 12."""
    return _best(prediction, answers, _PARAGRAPH_ZH)


@SCORERS.register("count")
def count(prediction: str, answers: Sequence[str]) -> float:
    """Gold is a count such as "7": the share of the numbers in the prediction that equal it."""
    return max((_share_equal(prediction, _gold_number(answer, _COUNT)) for answer in answers), default=0.0)

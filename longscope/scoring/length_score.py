"""LongBench-Write's length score (Bai et al. 2024, LongWriter): how close the produced length is to the asked one."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

# LongWriter's own counter: every CJK ideograph is one unit, every run of ASCII letters one word. Digits are
# not counted, and "don't" is two words: kept as the official code counts them.
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ENGLISH_WORD = re.compile(r"\b[a-zA-Z]+\b")


def count_words(text: str) -> int:
    """Chinese characters plus English words in ``text``, as LongWriter's evaluation counts a response."""
    return len(_CJK.findall(text)) + len(_ENGLISH_WORD.findall(text))


def length_score(required: float, produced: float) -> float:
    """S_l / 100 for a required length l and a produced length l': 1 - (l'/l - 1)/3 when too long, else
    1 - (l/l' - 1)/2, clipped at 0. Too long costs less than too short: three times the length scores 1/3,
    a third of it scores 0. An empty response scores 0 (the official code divides by zero there)."""
    if required <= 0:
        raise ValueError(f"the required length must be positive (got {required})")
    if produced <= 0:
        return 0.0
    if produced > required:
        return max(0.0, 1.0 - (produced / required - 1.0) / 3.0)
    return max(0.0, 1.0 - (required / produced - 1.0) / 2.0)


@SCORERS.register("length_following")
def length_following(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict]:
    """The length score of the prediction against ``meta["required_words"]`` (characters for a Chinese
    prompt, ``meta["length_unit"] == "chars"``; LongWriter counts both with one counter)."""
    required = float(meta["required_words"])
    produced = float(count_words(prediction))
    details: dict[str, float | str] = {"produced_words": produced, "required_words": required}
    if meta.get("length_unit") == "chars":
        details["length_unit"] = "chars"
    return length_score(required, produced), details

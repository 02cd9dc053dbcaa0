"""Letter choice (LongBench v2) and normalised exact-match and containment scores for short answers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.text_normalize import normalize_en

# Tried in order; the first that matches gives the letter. The phrase is case-insensitive, the letter must
# be a capital A-D standing alone, so "The correct answer is a guess" or "is Because" give nothing.
_CHOICE_PATTERNS = [
    re.compile(r"(?i:the correct answer is)\s*\(([A-D])\)"),
    re.compile(r"(?i:the correct answer is)\s*:?\s*([A-D])\b"),
    re.compile(r"(?i:answer)\s*:\s*\(?([A-D])\b"),
]
# A reply that is only a letter, perhaps wrapped: "B", "(B)", "B.", " c ".
_LONE_LETTER = re.compile(r"^\W*([A-Da-d])\W*$")


def extract_choice(prediction: str) -> str | None:
    """The letter A-D the reply chooses, or None. Markdown bold (*) is removed first."""
    text = prediction.replace("*", "")
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    match = _LONE_LETTER.match(text)
    return match.group(1).upper() if match else None


@SCORERS.register("choice_letter")
def choice_letter(prediction: str, answers: Sequence[str]) -> float:
    """1 if the letter the reply chooses equals a gold letter (a gold may be written "B" or "(B)")."""
    chosen = extract_choice(prediction)
    if chosen is None:
        return 0.0
    golds = {answer.strip().strip("()").strip().upper() for answer in answers}
    return float(chosen in golds)


@SCORERS.register("exact_match")
def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1 if the prediction equals a gold answer after SQuAD normalisation ("The Eiffel Tower." = "eiffel tower")."""
    predicted = normalize_en(prediction)
    return float(any(predicted == normalize_en(answer) for answer in answers))


def _contains(normalised_prediction: str, answer: str) -> bool:
    """Whole-word containment of the normalised gold: "12" is not found in "120", nor "cat" in "concat".
    A gold that normalises to nothing ("the", ".") is never found."""
    gold = normalize_en(answer)
    return bool(gold) and f" {gold} " in f" {normalised_prediction} "


@SCORERS.register("substring_any")
def substring_any(prediction: str, answers: Sequence[str]) -> float:
    """1 if any gold answer, normalised, appears as whole words in the normalised prediction."""
    text = normalize_en(prediction)
    return float(any(_contains(text, answer) for answer in answers))


@SCORERS.register("substring_all")
def substring_all(prediction: str, answers: Sequence[str]) -> float:
    """1 if every gold answer, normalised, appears as whole words in the normalised prediction (0 with no
    gold); all-or-nothing, where ``contains_all`` gives the share found."""
    text = normalize_en(prediction)
    return float(bool(answers) and all(_contains(text, answer) for answer in answers))

"""InfiniteBench's per-task scores, as its compute_scores.py reads a reply (non-GPT-4 models).

Most are all-or-nothing rules on one word or number of the reply; Zh.QA is a character-level F1, En.Sum a
ROUGE-Lsum, and Math.Calc the share of intermediate values right before the first wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from longscope.scoring import SCORERS
from longscope.scoring.lveval import normalize_zh
from longscope.scoring.token_f1 import token_f1

_DIGIT_RUNS = re.compile(r"[^0-9]")
_FIRST_NUMBER = re.compile(r"\d+\.\d+|\d+")


def first_int(text: str) -> str:
    """The first run of ASCII digits, as written ("" if none): "No. 0042, then 7" -> "0042"."""
    return next((run for run in _DIGIT_RUNS.split(text) if run), "")


def _words_between(text: str, separators: str) -> list[str]:
    for ch in separators:
        text = text.replace(ch, " ")
    return text.split()


def _collapse_spaces(text: str) -> str:
    while "  " in text:
        text = text.replace("  ", " ")
    return text


@SCORERS.register("infinitebench_first_int")
def infinitebench_first_int(prediction: str, answers: Sequence[str]) -> float:
    """Retrieve.PassKey and Retrieve.Number: the reply's first digit run equals the gold digits."""
    return float(bool(answers) and first_int(prediction) == answers[0])


@SCORERS.register("infinitebench_kv")
def infinitebench_kv(prediction: str, answers: Sequence[str]) -> float:
    """Retrieve.KV: the gold value is one of the reply's words, split at spaces and at \\n : " ' . , ? ! { }."""
    words = _words_between(prediction, "\n:\"'.,?!{}")
    return float(any(gold in words for gold in answers))


@SCORERS.register("infinitebench_dialogue")
def infinitebench_dialogue(prediction: str, answers: Sequence[str]) -> float:
    """En.Dia: the first gold name (as written, normally upper case) is one of the reply's words upper-cased;
    the other golds are not tried, as in InfiniteBench."""
    words = [word.upper() for word in _words_between(prediction.strip(), "\n:\"'.,?!{}")]
    return float(bool(answers) and answers[0] in words)


@SCORERS.register("infinitebench_choice")
def infinitebench_choice(prediction: str, answers: Sequence[str]) -> float:
    """En.MC, gold (option text, letter): a reply opening with A-D is read by that letter; a reply equal to a
    gold is right; else the words after "answer is:", "answer:", "answer is" or "option is" (the first found)
    must start with a gold; else the first word that is a piece of "ABCD" decides."""
    golds = list(answers)
    reply = prediction.strip()
    if not reply:
        return 0.0
    if reply[0] in "ABCD":
        return float(reply[0] in golds)
    if reply in golds:
        return 1.0
    for ch in "\n\"'.,?!{}":
        reply = reply.replace(ch, " ")
    reply = _collapse_spaces(reply)
    after = _after_first(reply, ("answer is:", "answer:", "answer is", "option is"))
    if after is not None:
        return float(any(after.startswith(gold) for gold in golds))
    for word in reply.split():
        if word in "ABCD":
            return float(word in golds)
    return 0.0


@SCORERS.register("infinitebench_code_debug")
def infinitebench_code_debug(prediction: str, answers: Sequence[str]) -> float:
    """Code.Debug, gold (function name, letter): the reply opens with "B." or "B:", or the words after the
    first of "answer is:", "is:", "answer:", "correct option is:" start with the letter or the name."""
    if len(answers) < 2:
        return 0.0
    name, letter = answers[0], answers[-1]
    reply = prediction.strip()
    if reply[:2] in (f"{letter}.", f"{letter}:"):
        return 1.0
    for old in ("\n", "`", "'", '"', "-", "*", "Option", "option"):
        reply = reply.replace(old, " ")
    reply = _collapse_spaces(reply)
    after = _after_first(reply, ("answer is:", "is:", "answer:", "correct option is:"))
    if after is not None:
        return float(after.startswith(letter) or after.startswith(name))
    return 0.0


def _after_first(reply: str, prefixes: Sequence[str]) -> str | None:
    """The reply after the first of ``prefixes`` found (tried in order) and the one character after it, as
    InfiniteBench reads an answer; "" when the reply ends there, None when no prefix occurs."""
    for prefix in prefixes:
        at = reply.find(prefix)
        if at != -1:
            return reply[at + len(prefix) + 1 :]
    return None


@SCORERS.register("infinitebench_code_run")
def infinitebench_code_run(prediction: str, answers: Sequence[str]) -> float:
    """Code.Run: the reply's last word (split at spaces, \\n . ` ' " :) is the gold integer."""
    words = _words_between(prediction.strip(), "\n.`'\":")
    if not words or not answers:
        return 0.0
    try:
        return float(int(words[-1]) == int(answers[0]))
    except ValueError:
        return 0.0


@SCORERS.register("infinitebench_math_find")
def infinitebench_math_find(prediction: str, answers: Sequence[str]) -> float:
    """Math.Find: the reply's first number (digits, optionally with a decimal part; no sign) equals the gold.
    InfiniteBench stops with an error on a decimal reply to an integer gold; here it is compared by value."""
    found = _FIRST_NUMBER.search(prediction)
    if found is None or not answers:
        return 0.0
    try:
        return float(float(found.group()) == float(answers[0]))
    except ValueError:
        return 0.0


@SCORERS.register("infinitebench_math_calc")
def infinitebench_math_calc(prediction: str, answers: Sequence[str]) -> float:
    """Math.Calc, golds = the intermediate values in order: the share of them the reply's digit runs give
    right, in order, before the first wrong one. Signs are not read, as in InfiniteBench, so a negative
    value is never matched."""
    if not answers:
        return 0.0
    given = [int(run) for run in _DIGIT_RUNS.split(prediction) if run]
    right = 0
    for got, want in zip(given, answers, strict=False):
        try:
            if got != int(want):
                break
        except ValueError:
            break
        right += 1
    return right / len(answers)


@SCORERS.register("infinitebench_qa_f1_zh")
def infinitebench_qa_f1_zh(prediction: str, answers: Sequence[str]) -> float:
    """Zh.QA: F1 over characters (one character, one token) after lower-casing and dropping punctuation and
    whitespace, best over the golds."""
    predicted = list(normalize_zh(prediction))
    return max((token_f1(predicted, list(normalize_zh(gold))) for gold in answers), default=0.0)


@cache
def _lsum_scorer():
    from rouge_score import rouge_scorer  # imported on first use: it pulls in nltk

    return rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=False)


@SCORERS.register("infinitebench_rouge_lsum")
def infinitebench_rouge_lsum(prediction: str, answers: Sequence[str]) -> float:
    """En.Sum: ROUGE-Lsum F-measure (Hugging Face evaluate's "rouge", sentences = lines, no stemming), best
    over the golds."""
    scorer = _lsum_scorer()
    return max((scorer.score(gold, prediction)["rougeLsum"].fmeasure for gold in answers), default=0.0)

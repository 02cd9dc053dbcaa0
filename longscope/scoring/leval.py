"""L-Eval's closed-ended scores: its answer extraction per task, then its exact-match rule (Evaluation/em.py).

The rule: a gold made only of option letters scores 1 for the same letters and 0.25 for a subset of them
(coursera's partly right multi-answer); any other gold scores 1 when both sides read as the same number, else
when the gold, lower-cased and without spaces, is inside the prediction treated the same way. L-Eval's
normaliser drops punctuation and the articles a/an/the but keeps case ("The" stays).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from longscope.scoring import SCORERS

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_OPTION_LETTERS = "ABCD"


def normalize(text: str) -> str:
    """Drop ASCII punctuation, then the lower-case articles, then collapse whitespace; case is kept."""
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exam_score(prediction: str, gold: str) -> float:
    """L-Eval's exact match of one (already extracted) prediction against one gold: 1, 0.25 or 0."""
    normalised_gold = normalize(gold)
    if all(ch in _OPTION_LETTERS for ch in normalised_gold):
        normalised = normalize(prediction)
        if normalised == normalised_gold:
            return 1.0
        return 0.25 if set(normalised) <= set(normalised_gold) else 0.0
    try:
        return float(float(prediction) == float(gold))
    except ValueError:
        return float(gold.lower().replace(" ", "") in prediction.lower().replace(" ", ""))


def option_gold(gold: str) -> str:
    """The letters of a gold such as "(B) Their subconscious..." or "BD": its first word, A-D only ("A" if none)."""
    words = gold.split()
    letters = re.sub(r"[^A-D]", "", words[0] if words else "")
    return letters or "A"


def option_prediction(reply: str, several: bool) -> str:
    """The letters a reply chooses, as L-Eval reads them. One answer: the first capital A-D anywhere. Several
    (coursera): a leading run of letters, else capitals standing alone before a space, "." or ")" (up to the
    next "Question"), else the first run of A-D; sorted, without repeats. "A" when nothing is found, and
    "None" for an empty reply."""
    if not reply.strip():
        return "None"
    if reply in _OPTION_LETTERS:  # "B", "BC": a substring of "ABCD"
        return reply
    if not several:
        for ch in reply:
            if ch in _OPTION_LETTERS:
                return ch
    leading = ""
    for ch in reply:
        if ch not in _OPTION_LETTERS:
            break
        leading += ch
    if len(leading) > 1:
        return "".join(sorted(set(leading)))
    rest = reply[len(leading) :].split("Question")[0]
    standing = " ".join(re.findall(r"\s*[A-Z](?=[\s.)])", rest)).strip()
    letters = "".join(sorted(set(re.sub(r"[^A-D]", "", leading + standing))))
    if not letters:
        run = ""
        for ch in rest:
            if ch in _OPTION_LETTERS:
                run += ch
            elif run:
                break
        letters = run
    return letters or "A"


def math_answer(text: str) -> str:
    """The digits of the answer: the word after "The answer is", else the last word holding a digit in the
    first paragraph; only its digits are kept, up to the first "." ("$1,250.50" -> "1250")."""
    match = re.search(r"The answer is (\S+)", text)
    if match:
        word = match.group(1)
    else:
        word = next(
            (w for w in reversed(text.split("\n\n")[0].split(" ")) if any(c.isdigit() for c in w)), ""
        )
    digits = ""
    for ch in word:
        if ch.isdigit():
            digits += ch
        if ch == ".":
            break
    return digits


def code_gold(text: str) -> str:
    """codeU's gold as compared: whitespace collapsed, commas, quotes and backslashes dropped, ".0" dropped,
    and brackets joined ("[6, 15]" -> "[6 15]")."""
    text = re.sub(r"\s+", " ", text)
    for old, new in (
        (",", ""),
        ("'", ""),
        ("\\", ""),
        (".0", ""),
        ("] [", "]["),
        ("[ [", "[["),
        ("] ]", "]]"),
    ):
        text = text.replace(old, new)
    return text


# Filler L-Eval deletes from a codeU reply before taking its last words; "is" goes even inside words.
_CODE_FILLER = ("will be", "of the code", "is", "would be", "the value of", "the result of", "printed")


def code_prediction(reply: str, gold: str) -> str:
    """The end of a codeU reply: as many words as the gold has plus three, after the last "the final output"
    when the reply says it (its first words), else the reply's last words."""
    keep = len(gold.split()) + 3
    text = code_gold(reply)
    for filler in _CODE_FILLER:
        text = text.replace(filler, "")
    if "the final output" in text:
        words = re.split(r"\s+", text.split("the final output")[-1])[:keep]
    else:
        words = re.split(r"\s+", text)[-keep:]
    return " ".join(words)


def true_false(reply: str) -> str:
    """The first word of the lower-cased reply (before any "[fact:", where L-Eval appends the second answer)
    holding "true" or "false": that word's verdict, else "<error>"."""
    for word in reply.lower().split("[fact:")[0].split():
        if "true" in word:
            return "true"
        if "false" in word:
            return "false"
    return "<error>"


def _best(prediction: str, answers: Sequence[str], read) -> float:
    return max((read(prediction, gold) for gold in answers), default=0.0)


@SCORERS.register("leval_choice")
def leval_choice(prediction: str, answers: Sequence[str]) -> float:
    """Single-answer multiple choice (quality, tpo): the first capital A-D of the reply against the gold letter."""
    return _best(prediction, answers, lambda p, g: exam_score(option_prediction(p, False), option_gold(g)))


@SCORERS.register("leval_choice_multi")
def leval_choice_multi(prediction: str, answers: Sequence[str]) -> float:
    """Multiple answers (coursera): 1 for the gold letters exactly, 0.25 for a subset of them, else 0."""
    return _best(prediction, answers, lambda p, g: exam_score(option_prediction(p, True), option_gold(g)))


@SCORERS.register("leval_math")
def leval_math(prediction: str, answers: Sequence[str]) -> float:
    """gsm100: the digits of "The answer is N" (or the last number of the first paragraph) on both sides."""
    return _best(prediction, answers, lambda p, g: exam_score(math_answer(p), math_answer(g)))


@SCORERS.register("leval_exact")
def leval_exact(prediction: str, answers: Sequence[str]) -> float:
    """topic_retrieval_longchat: the gold topic, lower-cased and without spaces, inside the reply."""
    return _best(prediction, answers, exam_score)


@SCORERS.register("leval_code")
def leval_code(prediction: str, answers: Sequence[str]) -> float:
    """codeU: the gold output (brackets joined, commas dropped) inside the last words of the reply."""
    return _best(prediction, answers, lambda p, g: exam_score(code_prediction(p, g), code_gold(g)))


@SCORERS.register("leval_true_false")
def leval_true_false(prediction: str, answers: Sequence[str]) -> float:
    """sci_fi: the reply's first true/false word against the gold verdict (the part before any "[fact: ...]")."""
    return _best(
        prediction, answers, lambda p, g: exam_score(true_false(p), g.lower().split("[fact:")[0].strip())
    )

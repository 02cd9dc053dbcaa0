"""HELMET's answer metrics (its utils.py and data.py post-processing): SQuAD-normalised substring and exact match,
ROUGE-L F1, each the better of the whole reply and the reply parsed after its answer prefix."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from functools import cache

from longscope.scoring import SCORERS

_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, punctuation out, then articles out, whitespace collapsed: the SQuAD/DrQA normalisation HELMET
    uses, in its order."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def parse_output(output: str, prefix: str = "Answer:") -> str | None:
    """The answer a reply gives, as HELMET's ``parse_output`` finds it: the rest of the line after the first
    ``prefix`` (any case), else the reply's first line; a repeated prefix at its start is dropped."""
    for pattern in (rf"(?:{re.escape(prefix)})(.*)(?:\n|$)", r"(?:^)(.*)(?:\n|$)"):
        found = re.search(pattern, output, flags=re.IGNORECASE)
        if found is not None:
            stripped = re.sub(f"^{re.escape(prefix)}", "", found[1].strip(), flags=re.IGNORECASE)
            return stripped.strip()
    return None


def substring_match(prediction: str, gold: str) -> bool:
    return normalize_answer(gold) in normalize_answer(prediction)


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


@cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_f1(prediction: str, gold: str) -> float:
    return _rouge().score(target=gold, prediction=prediction)["rougeL"].fmeasure


def _best(
    metric: Callable[[str, str], float], prediction: str, answers: Sequence[str], prefix: str | None
) -> float:
    """The best over the gold answers, of the whole reply and (where a prefix is given) of its parsed answer:
    HELMET keeps the larger of the metrics before and after parsing."""
    replies = [prediction]
    if prefix is not None:
        parsed = parse_output(prediction, prefix)
        if parsed is not None:
            replies.append(parsed)
    return max((float(metric(reply, gold)) for reply in replies for gold in answers), default=0.0)


def _prefix(meta: dict) -> str | None:
    return meta.get("parse_prefix", "Answer:")


def completed(prediction: str, meta: dict) -> str:
    """The reply as HELMET scores it: a completion prompt's answer prefix ("Answer:") put back in front, as
    eval.py does for runs without a chat template, so that parsing finds it."""
    return meta.get("prepend", "") + prediction


@SCORERS.register("helmet_substring_em")
def helmet_substring_em(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """1 when a normalised gold answer is inside the normalised reply (HELMET's ``substring_exact_match``: RAG,
    JSON KV, RULER's QA)."""
    return _best(substring_match, completed(prediction, meta), answers, _prefix(meta))


@SCORERS.register("helmet_exact_match")
def helmet_exact_match(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """1 when the normalised reply equals a normalised gold answer (HELMET's ``exact_match``: ICL)."""
    return _best(exact_match, completed(prediction, meta), answers, _prefix(meta))


@SCORERS.register("helmet_rouge_l_f1")
def helmet_rouge_l_f1(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """rouge-score's ROUGE-L F1 with the Porter stemmer (HELMET's ``rougeL_f1``: InfiniteBench QA)."""
    return _best(rouge_l_f1, completed(prediction, meta), answers, _prefix(meta))


@SCORERS.register("helmet_choice_em")
def helmet_choice_em(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """InfiniteBench multiple choice as HELMET scores it: exact match of the letter or of "B. option text" (reply
    or parsed reply), and 1 whenever the reply contains "B. option text" in any case (its second answer)."""
    prediction = completed(prediction, meta)
    if len(answers) > 1 and answers[1].lower() in prediction.lower():
        return 1.0
    return _best(exact_match, prediction, answers, _prefix(meta))


@SCORERS.register("helmet_ruler_recall")
def helmet_ruler_recall(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """The share of the gold values named in the reply, case ignored, nothing parsed (HELMET's ``ruler_recall``)."""
    text = completed(prediction, meta).lower()
    return sum(answer.lower() in text for answer in answers) / len(answers) if answers else 0.0


@SCORERS.register("helmet_icl_em")
def helmet_icl_em(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """Many-shot ICL as HELMET scores it: exact match of the label parsed after "label:" only (the whole reply
    is not tried), the completion's "label:" put back in front first."""
    parsed = parse_output(completed(prediction, meta), meta.get("parse_prefix", "label:"))
    return float(any(exact_match(parsed or "", gold) for gold in answers))

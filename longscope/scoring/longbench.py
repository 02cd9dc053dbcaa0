"""LongBench's scoring rules around the metrics: its ROUGE-L (the ``rouge`` package's), first-line scoring of
few-shot answers, a per-record metric, and LongBench v2's answer-letter extraction."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.core import UsageError
from longscope.scoring import SCORERS, Details, score_with_details
from longscope.scoring import rouge_summary_level as pltrdy
from longscope.scoring.classification import classification
from longscope.scoring.text_normalize import zh_words
from longscope.scoring.token_f1 import qa_f1

# LongBench's rouge_score calls the ``rouge`` package, whose ROUGE-L traces each sentence pair's LCS back
# recursively; under Python's default recursion limit of 1000, a pair needing more nested calls than these
# raises RecursionError, which rouge_score catches and scores 0. The numbers were measured by running
# LongBench's eval.py scorer (Python 3.11): the Chinese path is one call deeper (rouge_zh_score calls
# rouge_score), so it has one call fewer to spare. Long sentences reach it: a reply of ~990 words with no "."
# in it, or a Chinese summary (cut only at ASCII ".") whose two sides together run to ~1000 jieba words.
DEEPEST_TRACE = {"en": 991, "zh": 990}


def longbench_rouge_pair(prediction: str, gold: str, language: str = "en") -> tuple[float, str | None]:
    """LongBench's ``rouge_score`` of one prediction against one gold: the ``rouge`` package's ROUGE-L F
    (sentences cut at ".", words split at spaces, case kept, distinct words, summary-level union LCS), and 0
    with the reason wherever the package raises (a side with no sentence, such as "" or "...", or a trace
    too deep), since LongBench catches every exception and scores it 0."""
    try:
        got = pltrdy.checked_scores(prediction, gold, DEEPEST_TRACE[language])
    except pltrdy.PackageError as error:
        return 0.0, str(error)
    return got["rouge-l"]["f"], None


def _best_rouge(prediction: str, answers: Sequence[str], language: str) -> tuple[float, Details]:
    best, details = 0.0, {}
    for number, answer in enumerate(answers, start=1):
        value, reason = longbench_rouge_pair(prediction, answer, language)
        if reason is not None:
            details["reason"] = f"gold {number}: the rouge package raises ({reason}); LongBench scores it 0"
        best = max(best, value)
    return best, details


@SCORERS.register("longbench_rouge_l")
def longbench_rouge_l(prediction: str, answers: Sequence[str]) -> tuple[float, Details]:
    """LongBench's ROUGE-L for its English summaries (gov_report, qmsum, multi_news, samsum): the ``rouge``
    package's F as ``longbench_rouge_pair`` computes it, the best over the golds. Unlike Google's rouge-score
    (the ``rouge_l`` scorer) it keeps case and punctuation on the words ("Staffing," is not "staffing"), cuts
    sentences at "." and counts distinct words, which moves scores by up to 0.25. A prediction the package
    raises on scores 0, with the reason in the details."""
    return _best_rouge(prediction, answers, "en")


def jieba_spaced(text: str) -> str:
    """The text as LongBench's ``rouge_zh_score`` hands it on: jieba's words joined by single spaces."""
    return " ".join(zh_words(text))


@SCORERS.register("longbench_rouge_l_zh")
def longbench_rouge_l_zh(prediction: str, answers: Sequence[str]) -> tuple[float, Details]:
    """LongBench's ROUGE-L for dureader and vcsum: both sides cut into jieba words joined by spaces, then
    ``longbench_rouge_l``. Sentences are still cut only at the ASCII ".", so a Chinese text is mostly one
    sentence; a long one can exceed the package's recursion (see ``DEEPEST_TRACE``) and score 0."""
    return _best_rouge(jieba_spaced(prediction), [jieba_spaced(answer) for answer in answers], "zh")


def first_line(prediction: str) -> str:
    """LongBench's rule for its few-shot datasets (trec, triviaqa, samsum, lsht), whose prompts end where the
    next example would start: only the first line counts, after leading newlines."""
    return prediction.lstrip("\n").split("\n")[0]


@SCORERS.register("qa_f1_first_line")
def qa_f1_first_line(prediction: str, answers: Sequence[str]) -> float:
    """``qa_f1`` on the first line of the prediction (LongBench's triviaqa)."""
    return qa_f1(first_line(prediction), answers)


@SCORERS.register("longbench_rouge_l_first_line")
def longbench_rouge_l_first_line(prediction: str, answers: Sequence[str]) -> tuple[float, Details]:
    """``longbench_rouge_l`` on the first line of the prediction (LongBench's samsum)."""
    return longbench_rouge_l(first_line(prediction), answers)


@SCORERS.register("classification_first_line")
def classification_first_line(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """``classification`` on the first line of the prediction (LongBench's trec and lsht)."""
    return classification(first_line(prediction), answers, meta=meta)


@SCORERS.register("per_record")
def per_record(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, Details]:
    """The metric the sample names in ``meta["metric"]``: for a task whose records come from datasets scored
    differently (all of LongBench at once)."""
    name = meta.get("metric")
    if not name or name == "per_record":
        raise UsageError(
            "scorer per_record needs the sample's metadata to name its metric (metadata 'metric')"
        )
    return score_with_details(name, prediction, answers, meta)


# LongBench v2's extraction (its pred.py): markdown bold removed, then "The correct answer is (X)", then
# "The correct answer is X", both case-sensitive and X one of A-D; anything else chooses nothing.
_V2_PATTERNS = (
    re.compile(r"The correct answer is \(([A-D])\)"),
    re.compile(r"The correct answer is ([A-D])"),
)


def extract_v2_choice(response: str) -> str | None:
    """The letter LongBench v2 reads from a reply, or None."""
    text = response.strip().replace("*", "")
    for pattern in _V2_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


@SCORERS.register("longbench_v2_choice")
def longbench_v2_choice(prediction: str, answers: Sequence[str]) -> float:
    """1 if the letter LongBench v2's rule extracts equals the gold letter, else 0 (no letter found is 0).

    Stricter than ``choice_letter``, as the benchmark is: a bare "B" or "Answer: B" chooses nothing, and the
    phrase is case-sensitive; like the benchmark, "The correct answer is Because..." reads as B."""
    chosen = extract_v2_choice(prediction)
    return float(chosen is not None and chosen in {answer.strip().strip("()").strip() for answer in answers})

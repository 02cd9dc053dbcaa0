"""LongBench's scoring rules around the metrics: first-line scoring of few-shot answers, a per-record metric, and
LongBench v2's answer-letter extraction."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.core import UsageError
from longscope.scoring import SCORERS, score_with_details
from longscope.scoring.classification import classification
from longscope.scoring.rouge import rouge_l
from longscope.scoring.token_f1 import qa_f1


def first_line(prediction: str) -> str:
    """LongBench's rule for its few-shot datasets (trec, triviaqa, samsum, lsht), whose prompts end where the
    next example would start: only the first line counts, after leading newlines."""
    return prediction.lstrip("\n").split("\n")[0]


@SCORERS.register("qa_f1_first_line")
def qa_f1_first_line(prediction: str, answers: Sequence[str]) -> float:
    """``qa_f1`` on the first line of the prediction (LongBench's triviaqa)."""
    return qa_f1(first_line(prediction), answers)


@SCORERS.register("rouge_l_first_line")
def rouge_l_first_line(prediction: str, answers: Sequence[str]) -> float:
    """``rouge_l`` on the first line of the prediction (LongBench's samsum)."""
    return rouge_l(first_line(prediction), answers)


@SCORERS.register("classification_first_line")
def classification_first_line(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """``classification`` on the first line of the prediction (LongBench's trec and lsht)."""
    return classification(first_line(prediction), answers, meta=meta)


@SCORERS.register("per_record")
def per_record(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
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

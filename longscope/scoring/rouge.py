"""ROUGE-L F-measure for summarisation-style answers, via Google's rouge-score: a general-purpose ROUGE-L.

LongBench does not score with it: its summaries are scored by the ``rouge`` package (pltrdy), which keeps
case and punctuation, cuts sentences at "." and counts distinct words; the ``longbench_rouge_l`` scorers
follow that package. These two are for tasks that want the usual token-level ROUGE-L."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from longscope.scoring import SCORERS
from longscope.scoring.text_normalize import zh_words


class _WhitespaceTokenizer:
    """rouge-score's default tokenizer keeps only [a-z0-9], which would erase Chinese; this one splits on
    whitespace and keeps every token as is."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


@cache
def _scorer(chinese: bool):
    from rouge_score import rouge_scorer  # imported on first use: it pulls in nltk

    tokenizer = _WhitespaceTokenizer() if chinese else None
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=tokenizer)


def _best_rouge_l(prediction: str, answers: Sequence[str], chinese: bool) -> float:
    scorer = _scorer(chinese)
    # score(target, prediction); an empty side gives 0.
    return max((scorer.score(answer, prediction)["rougeL"].fmeasure for answer in answers), default=0.0)


@SCORERS.register("rouge_l")
def rouge_l(prediction: str, answers: Sequence[str]) -> float:
    """ROUGE-L F-measure (longest common subsequence of words, lower-cased, no stemming), best over the golds."""
    return _best_rouge_l(prediction, answers, chinese=False)


def _segmented(text: str) -> str:
    """jieba's words joined by single spaces, whitespace-only words dropped: "我爱北京" -> "我 爱 北京"."""
    return " ".join(word for word in zh_words(text) if word.strip())


@SCORERS.register("rouge_l_zh")
def rouge_l_zh(prediction: str, answers: Sequence[str]) -> float:
    """Chinese ROUGE-L: both sides segmented with jieba and joined by spaces, then ROUGE-L over the words."""
    segmented = _segmented(prediction)
    return _best_rouge_l(segmented, [_segmented(answer) for answer in answers], chinese=True)

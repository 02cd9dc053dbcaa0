"""LV-Eval's scores (its metrics.py and evaluation.py): keyword-recall-gated token F1, plain F1 and a
blacklisted Chinese ROUGE-L, each against the FIRST gold answer only, as LV-Eval's evaluation loop does.

The gate: the prediction's tokens shared with the answer keywords (``meta["answer_keywords"]``), counted with
multiplicity and leaving out the words of a blacklist, over the number of keyword tokens; below 0.2 (English)
or 0.4 (Chinese) the score is 0. English with no keywords has no gate; Chinese with no keywords gates against
the gold answer itself. Chinese tokens are jieba words, lower-cased, stripped of punctuation and whitespace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring import rouge_summary_level as pltrdy
from longscope.scoring.text_normalize import en_tokens, zh_words
from longscope.scoring.text_normalize import normalize_zh_answer as normalize_zh
from longscope.scoring.text_normalize import zh_answer_tokens as zh_tokens
from longscope.scoring.token_f1 import token_f1

# LV-Eval (and InfiniteBench, which imports ``normalize_zh`` from here) normalise Chinese as LongBench does:
# lower case, without ASCII punctuation, LongBench's list of Chinese punctuation or any whitespace.

# LV-Eval's blacklists: words that do not count towards the keyword recall.
BLACKLIST_EN = frozenset(
    "and to of in her was with for it from is that his he by she they or at because be on are their what as "
    "had were about being this who but have has when which does".split()
)
BLACKLIST_ZH = frozenset(
    "的 和 是 等 在 年 可以 为 与 ‰ 了 或 一种 月 c 至 日 有 进行 于 不 中 × 根据 小 由 亩 也 要 指 法 会 元 主要 以及 "
    "通过 首先 对 然后 号 以 所 后 丁 包括 无 将 用 能 形 方面 因素 位于 而 从 到 一定 用于 但 使用 让 具有 并 亿元 "
    "万元 上 类 基于 才 来 地 片 其他 个 或者 变得 时 给 你 使 条 受 已经 带 度".split()
)
KEYWORD_RECALL_THRESHOLD = {"en": 0.2, "zh": 0.4}


def keyword_recall(predicted: list[str], keywords: list[str], blacklist: frozenset[str]) -> float:
    """Shared tokens (with multiplicity) that are not blacklisted, over all keyword tokens."""
    shared = Counter(predicted) & Counter(keywords)
    return sum(count for token, count in shared.items() if token not in blacklist) / len(keywords)


def _keywords(meta: dict) -> str:
    keywords = meta.get("answer_keywords") or ""
    return " ".join(keywords) if isinstance(keywords, list) else str(keywords)


@SCORERS.register("lveval_f1")
def lveval_f1(prediction: str, answers: Sequence[str]) -> float:
    """factrecall_en: token F1 (SQuAD normalisation) against the first gold, no gate."""
    return token_f1(en_tokens(prediction), en_tokens(answers[0])) if answers else 0.0


@SCORERS.register("lveval_f1_zh")
def lveval_f1_zh(prediction: str, answers: Sequence[str]) -> float:
    """factrecall_zh: Chinese token F1 against the first gold, no gate."""
    return token_f1(zh_tokens(prediction), zh_tokens(answers[0])) if answers else 0.0


@SCORERS.register("lveval_gated_f1")
def lveval_gated_f1(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """English keyword-gated F1: 0 if the prediction recalls under 0.2 of the keyword tokens (blacklisted
    words not counted as recalled), else the token F1 against the first gold. Sub-scores: the ungated F1 and
    the keyword recall."""
    if not answers:
        return 0.0, {}
    predicted = en_tokens(prediction)
    details = {"f1": token_f1(predicted, en_tokens(answers[0]))}
    keywords = en_tokens(_keywords(meta))
    if keywords:
        details["keyword_recall"] = keyword_recall(predicted, keywords, BLACKLIST_EN)
        if details["keyword_recall"] < KEYWORD_RECALL_THRESHOLD["en"]:
            return 0.0, details
    return details["f1"], details


@SCORERS.register("lveval_gated_f1_zh")
def lveval_gated_f1_zh(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """Chinese keyword-gated F1: the gate is 0.4 and, with no keywords, the gold answer stands for them."""
    if not answers:
        return 0.0, {}
    predicted, gold = zh_tokens(prediction), zh_tokens(answers[0])
    details = {"f1": token_f1(predicted, gold)}
    keywords = zh_tokens(_keywords(meta) or answers[0])
    if keywords:
        details["keyword_recall"] = keyword_recall(predicted, keywords, BLACKLIST_ZH)
        if details["keyword_recall"] < KEYWORD_RECALL_THRESHOLD["zh"]:
            return 0.0, details
    return details["f1"], details


def _blacklisted_zh(text: str) -> str:
    """Segment, join with spaces, segment that again, normalise each piece and drop blacklisted ones."""
    spaced = " ".join(zh_words(text))
    return " ".join(
        token for token in (normalize_zh(w) for w in zh_words(spaced)) if token not in BLACKLIST_ZH
    )


@SCORERS.register("lveval_rouge_zh")
def lveval_rouge_zh(prediction: str, answers: Sequence[str]) -> float:
    """dureader_mixup: ROUGE-L F (the `rouge` package's) of the segmented, normalised, blacklist-filtered
    texts against the first gold; 0 where the package raises (nothing left of a side)."""
    if not answers:
        return 0.0
    got = pltrdy.scores(_blacklisted_zh(prediction), _blacklisted_zh(answers[0]))
    return 0.0 if got is None else got["rouge-l"]["f"]

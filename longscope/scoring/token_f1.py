"""Token-overlap F1 for extractive QA (LongBench's qa_f1 in English and Chinese, LV-Eval's keyword-gated F1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.text_normalize import en_tokens, has_cjk, zh_answer_tokens, zh_tokens


def token_f1(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Harmonic mean of token precision and recall, counting each shared token as often as both sides hold it;
    0 when either side is empty or nothing is shared."""
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_recall(predicted: Sequence[str], wanted: Sequence[str]) -> float:
    """Share of the wanted tokens (with multiplicity) that the prediction holds; 0 if nothing is wanted."""
    if not wanted:
        return 0.0
    return sum((Counter(predicted) & Counter(wanted)).values()) / len(wanted)


@SCORERS.register("qa_f1")
def qa_f1(prediction: str, answers: Sequence[str]) -> float:
    """English token F1 after SQuAD normalisation (LongBench's ``qa_f1_score``), the best over the golds."""
    predicted = en_tokens(prediction)
    return max((token_f1(predicted, en_tokens(answer)) for answer in answers), default=0.0)


@SCORERS.register("qa_f1_zh")
def qa_f1_zh(prediction: str, answers: Sequence[str]) -> float:
    """LongBench's Chinese token F1 (``qa_f1_zh_score``): jieba's words, each lower-cased and stripped of
    ASCII punctuation, LongBench's fixed list of Chinese punctuation and whitespace; the best over the golds.
    As in LongBench, "Apple公司" equals "apple公司", while "《" and "·" are not on the list and stay."""
    predicted = zh_answer_tokens(prediction)
    return max((token_f1(predicted, zh_answer_tokens(answer)) for answer in answers), default=0.0)


# LV-Eval's keyword gate: a prediction must recall at least this share of the answer-keyword tokens, or it
# scores 0. The values are those in LV-Eval's published metric (Yuan et al. 2024, "LV-Eval: A Balanced
# Long-Context Benchmark with 5 Length Levels up to 256K", keyword-recall-based F1): 0.2 for English,
# 0.4 for Chinese.
KEYWORD_RECALL_THRESHOLD = {"en": 0.2, "zh": 0.4}


@SCORERS.register("keyword_gated_f1")
def keyword_gated_f1(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """A keyword-recall-gated token F1, after LV-Eval's idea; the ``lveval`` loader scores with its own
    ``lveval_*`` scorers, which follow LV-Eval's code exactly (its word blacklist counts only in the keyword
    recall, Chinese without keywords gates on the gold answer, only the first gold answer counts).

    ``meta["answer_keywords"]`` (a list of strings, or one string) holds the answer's key words. Their tokens,
    normalised as the prediction is, are pooled; if the prediction recalls fewer than
    ``KEYWORD_RECALL_THRESHOLD`` of them the score is 0, otherwise it is the token F1 against the best gold
    answer. With no keywords there is no gate. The language is ``meta["language"]`` ("en" or "zh") when
    given, else Chinese if the gold answers or keywords contain CJK ideographs.

    The gold answers and the prediction are used as given, with every gold answer tried.
    """
    keywords = meta.get("answer_keywords") or []
    if isinstance(keywords, str):
        keywords = [keywords]
    language = meta.get("language")
    if language not in KEYWORD_RECALL_THRESHOLD:
        language = "zh" if any(has_cjk(text) for text in [*answers, *keywords]) else "en"
    tokenize = zh_tokens if language == "zh" else en_tokens
    predicted = tokenize(prediction)
    f1 = max((token_f1(predicted, tokenize(answer)) for answer in answers), default=0.0)
    details = {"f1": f1}  # the ungated F1, kept to show what the gate took away
    if keywords:
        wanted = [token for keyword in keywords for token in tokenize(keyword)]
        details["keyword_recall"] = token_recall(predicted, wanted)
        if details["keyword_recall"] < KEYWORD_RECALL_THRESHOLD[language]:
            return 0.0, details
    return f1, details

"""Answer normalisation shared by the benchmark metrics: SQuAD-style English, and Chinese with word segmentation."""

from __future__ import annotations

import logging
import re
import string
import unicodedata
from functools import cache

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def normalize_en(text: str) -> str:
    """SQuAD's answer normalisation: lower case, drop ASCII punctuation, drop the articles a/an/the, and
    collapse whitespace. "The Cat, sat!" -> "cat sat"."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def en_tokens(text: str) -> list[str]:
    """The words of the normalised English text."""
    return normalize_en(text).split()


def _is_zh_dropped(ch: str) -> bool:
    """Whitespace, ASCII punctuation, any Unicode punctuation (。，、“”《》…), and the full-width symbols
    (＄＋～｀, the block U+FF01..U+FF5E that mirrors ASCII) that Chinese text uses as punctuation."""
    if ch.isspace() or ch in _ASCII_PUNCTUATION:
        return True
    category = unicodedata.category(ch)
    if category.startswith("P"):
        return True
    return category.startswith("S") and "\uff01" <= ch <= "\uff5e"


def normalize_zh(text: str) -> str:
    """A broad Chinese normalisation: drop every Unicode punctuation mark, the full-width symbols and all
    whitespace; case is kept. The generic ``keyword_gated_f1`` uses it; LongBench and the benchmarks derived
    from it normalise with ``normalize_zh_answer`` instead."""
    return "".join(ch for ch in text if not _is_zh_dropped(ch))


# The punctuation LongBench's Chinese normalisation removes besides ASCII's (its metrics.py, reused by LV-Eval
# and InfiniteBench). It is a fixed list, not a Unicode category: the opening "《" is missing while the closing
# "》" is there, and the middle dot "·" is missing, so those stay in the tokens.
ZH_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
_ZH_ANSWER_DROPPED = frozenset(string.punctuation + ZH_PUNCTUATION)


def normalize_zh_answer(text: str) -> str:
    """LongBench's Chinese answer normalisation: lower-case, then drop ASCII punctuation, the characters of
    ``ZH_PUNCTUATION`` and every whitespace character. "Apple公司" -> "apple公司", "《红楼梦》" -> "《红楼梦"."""
    return "".join(ch for ch in text.lower() if ch not in _ZH_ANSWER_DROPPED and not ch.isspace())


@cache
def _jieba():
    import jieba  # imported on first use: its dictionary takes a moment to load

    jieba.setLogLevel(logging.ERROR)  # it announces the dictionary loading on stderr otherwise
    return jieba


def zh_words(text: str) -> list[str]:
    """jieba's word segmentation (accurate mode), as is: whitespace and punctuation remain as tokens."""
    return list(_jieba().cut(text, cut_all=False))


def zh_tokens(text: str) -> list[str]:
    """Segment with jieba, normalise each word with ``normalize_zh``, and keep the words not emptied by it."""
    return [word for word in (normalize_zh(w) for w in zh_words(text)) if word]


def zh_answer_tokens(text: str) -> list[str]:
    """LongBench's Chinese tokens: jieba's words of the raw text, each put through ``normalize_zh_answer``,
    the emptied ones dropped."""
    return [word for word in (normalize_zh_answer(w) for w in zh_words(text)) if word]


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    """True if ``text`` holds a CJK ideograph, which is how a metric with no language given picks Chinese."""
    return bool(_CJK.search(text))

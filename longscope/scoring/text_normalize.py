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
    """Chinese answer normalisation: drop Chinese and English punctuation and all whitespace; case is kept."""
    return "".join(ch for ch in text if not _is_zh_dropped(ch))


@cache
def _jieba():
    import jieba  # imported on first use: its dictionary takes a moment to load

    jieba.setLogLevel(logging.ERROR)  # it announces the dictionary loading on stderr otherwise
    return jieba


def zh_words(text: str) -> list[str]:
    """jieba's word segmentation (accurate mode), as is: whitespace and punctuation remain as tokens."""
    return list(_jieba().cut(text, cut_all=False))


def zh_tokens(text: str) -> list[str]:
    """Segment with jieba, normalise each word, and keep the words that are not empty after normalising."""
    return [word for word in (normalize_zh(w) for w in zh_words(text)) if word]


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    """True if ``text`` holds a CJK ideograph, which is how a metric with no language given picks Chinese."""
    return bool(_CJK.search(text))

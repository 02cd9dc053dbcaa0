"""Measures of an output's own text that every row carries: how many words it holds, and how much it repeats."""

from __future__ import annotations

import re

# Han ideographs (with extension A and the compatibility block), kana and Hangul syllables: scripts written
# without spaces between words.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ALNUM_RUN = re.compile(r"[^\W_]+")


def mostly_cjk(text: str) -> bool:
    """At least half of the text's non-space characters are CJK."""
    visible = sum(1 for ch in text if not ch.isspace())
    return visible > 0 and 2 * len(_CJK.findall(text)) >= visible


def units(text: str) -> list[str]:
    """The text's words, case-folded: whitespace-separated tokens; for text that is mostly CJK, which puts no
    spaces between words, each CJK character is one unit (as length targets in Chinese are set in characters)
    and the runs of letters or digits between them are one unit each, punctuation left out."""
    if not mostly_cjk(text):
        return text.casefold().split()
    out: list[str] = []
    for piece in re.split(f"({_CJK.pattern})", text.casefold()):
        if _CJK.fullmatch(piece):
            out.append(piece)
        else:
            out += _ALNUM_RUN.findall(piece)
    return out


def output_words(text: str) -> int:
    """Words in an output (characters, for CJK text; see ``units``)."""
    return len(units(text))


def repetition(text: str, n: int = 4) -> float:
    """The share of the output's word n-grams (4 by default) that repeat an earlier one: 1 − distinct / all,
    0 when the text has fewer than ``n`` words. A text that loops on one phrase tends to 1."""
    words = units(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)

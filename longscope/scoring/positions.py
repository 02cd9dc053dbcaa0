"""Where each item's answer sits in a long output: the ``item_positions`` detail the report bins by tenth."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence


def relative(offset: int | None, output: str) -> float | None:
    """``offset`` as a share of the output's characters (0 at its start), or None when nothing was found."""
    if offset is None:
        return None
    return round(offset / max(1, len(output)), 4)


def item_positions(entries: Sequence[tuple[float | None, float]]) -> str:
    """The JSON text of ``[[relative position or null, score 0..1], ...]``, one entry per item."""
    return json.dumps([[position, round(float(score), 4)] for position, score in entries])


def lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    """Each line of ``text`` (without its newline) with the character offset where it starts."""
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1

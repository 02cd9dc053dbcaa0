"""Cutting made-up haystack units into pieces that recur, so their token counts come from cached piece counts."""

from __future__ import annotations


def split_at_spaces(text: str) -> list[str]:
    """``text`` cut before every space: ``"".join`` gives it back, and each piece after the first starts with
    its space. A byte-level tokenizer of the GPT-2 kind never merges across a space that a word follows, so
    the pieces' counts add up to the text's; words recur across units, so few pieces are new. Whether they
    add up for a given tokenizer is checked (``GeneratedUnits.pieces_add_up``), never assumed."""
    first, *rest = text.split(" ")
    return [first, *(" " + word for word in rest)] if first else [" " + word for word in rest]

"""Haystack units made up by index whose texts recur across samples, so each is counted once per tokenizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from longscope.haystack import GeneratedUnits


class MemoUnits(GeneratedUnits):
    """Units from ``make(index)``; their token counts are kept per tokenizer by text (``counts_by_text``), so a
    sample built after another from the same stream tokenises only the units it has not seen.

    Given ``pieces`` (index → the unit cut into pieces that recur), units are counted from cached piece counts
    where this tokenizer adds them up (``GeneratedUnits.pieces_add_up``): a sample that starts reading the
    stream somewhere new then tokenises nothing but the pieces it has not seen."""

    def __init__(
        self, make: Callable[[int], str], family: str, pieces: Callable[[int], Sequence[str]] | None = None
    ) -> None:
        super().__init__(make, name=family, pieces=pieces)
        self.family = family

    def unit(self, index: int) -> str:
        # ``make`` keeps its own memo across samples; a per-stream copy would only cost memory.
        return self.make(index)

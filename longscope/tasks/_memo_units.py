"""Haystack units made up by index whose texts recur across samples, so each is counted once per tokenizer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from longscope.core import Backend
from longscope.haystack import UnitSource, counts_by_text


class MemoUnits(UnitSource):
    """Units from ``make(index)``; their token counts are kept per tokenizer by text (``counts_by_text``), so a
    sample built after another from the same stream tokenises only the units it has not seen."""

    def __init__(self, make: Callable[[int], str], family: str) -> None:
        self.make = make
        self.family = family

    def unit(self, index: int) -> str:
        return self.make(index)

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        return np.array(counts_by_text(backend, self.units(start, count)), dtype=np.int64)

    def knows_joins(self, backend: Backend) -> bool:
        return True

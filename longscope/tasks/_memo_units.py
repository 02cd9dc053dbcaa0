"""Haystack units made up by index whose texts recur across samples, so each is counted once per tokenizer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from longscope.core import Backend
from longscope.haystack import UnitSource

_LIMIT = 200_000
_COUNTS: dict[tuple[str, str], dict[str, int]] = {}


class MemoUnits(UnitSource):
    """Units from ``make(index)``; their token counts are kept per (tokenizer, family) by text, so a sample
    built after another from the same stream tokenises only the units it has not seen."""

    def __init__(self, make: Callable[[int], str], family: str) -> None:
        self.make = make
        self.family = family

    def unit(self, index: int) -> str:
        return self.make(index)

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        memo = _COUNTS.setdefault((backend.tokenizer_fingerprint(), self.family), {})
        texts = self.units(start, count)
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if len(memo) + len(missing) > _LIMIT:
            memo.clear()
        memo.update(zip(missing, backend.count_tokens_batch(missing), strict=True))
        return np.array([memo[t] for t in texts], dtype=np.int64)

"""Effective context length: the largest tested length whose mean score clears a threshold (RULER's rule)."""

from __future__ import annotations

from collections.abc import Mapping

# RULER's threshold: Llama-2-7B's mean score at 4k, the length it was trained for.
DEFAULT_THRESHOLD = 85.6


def effective_length(scores: Mapping[int, float | None], threshold: float = DEFAULT_THRESHOLD) -> int | None:
    """The largest length whose mean score (0-100) is at least ``threshold``; None when no length clears it.

    Computed from the measured per-length means every time, never stored or copied.
    """
    passing = [length for length, score in scores.items() if score is not None and score >= threshold]
    return max(passing) if passing else None

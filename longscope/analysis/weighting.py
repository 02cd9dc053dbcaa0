"""Length-weighted averages of per-length scores: weights rising (inc) or falling (dec) with length rank."""

from __future__ import annotations

from collections.abc import Mapping

DIRECTIONS = ("inc", "dec")


def rank_weights(lengths: list[int], direction: str) -> dict[int, int]:
    """Weight of each length: its rank among the lengths (1 for the shortest) for ``inc``, reversed for ``dec``.

    Ranks rather than the lengths themselves, so that a 128k point does not swamp a grid that also has 4k;
    this is how RULER ranks models by their wAvg (inc) and wAvg (dec).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    ordered = sorted(set(lengths))
    count = len(ordered)
    return {
        length: (rank if direction == "inc" else count + 1 - rank)
        for rank, length in enumerate(ordered, start=1)
    }


def weighted_average(scores: Mapping[int, float | None], direction: str = "inc") -> float | None:
    """The rank-weighted mean of the per-length scores; lengths without a score are left out before ranking."""
    present = {length: score for length, score in scores.items() if score is not None}
    if not present:
        return None
    weights = rank_weights(list(present), direction)
    total = sum(weights.values())
    return sum(weights[length] * score for length, score in present.items()) / total

"""Effective context length from measured per-length scores: RULER's absolute rule, NoLiMa's relative one, and
the area under the score-length curve; always computed from the scores, never copied."""

from __future__ import annotations

import math
from collections.abc import Mapping

# RULER's threshold: Llama-2-7B's mean score at 4k, the length it was trained for. RULER states that a length
# counts when its score *exceeds* the threshold; its own table lists one row sitting at exactly 85.6 as
# passing, and longscope follows the stated rule (85.6 itself does not pass).
DEFAULT_THRESHOLD = 85.6
# NoLiMa's share of the base score a length must keep.
DEFAULT_SHARE = 0.85


def _scored(scores: Mapping[int, float | None]) -> dict[int, float]:
    return {length: score for length, score in sorted(scores.items()) if score is not None}


def effective_length(scores: Mapping[int, float | None], threshold: float = DEFAULT_THRESHOLD) -> int | None:
    """The largest tested length whose mean score (0-100) exceeds ``threshold``; None when none does. A length
    that fails between two that pass does not stop a longer one from counting, as in RULER's tables."""
    passing = [length for length, score in _scored(scores).items() if score > threshold]
    return max(passing) if passing else None


def length_label(scores: Mapping[int, float | None], threshold: float = DEFAULT_THRESHOLD, fmt=str) -> str:
    """RULER's label: the effective length; ``>L`` when the longest tested length L passes (the model may
    read further than was tested); ``<S`` when even the shortest tested length S fails; ``—`` with no scores."""
    scored = _scored(scores)
    if not scored:
        return "—"
    found = effective_length(scored, threshold)
    if found is None:
        return f"<{fmt(min(scored))}"
    if found == max(scored):
        return f">{fmt(found)}"
    return fmt(found)


def base_score(scores: Mapping[int, float | None], base_lengths: int = 1) -> float | None:
    """The model's own base: the mean score over its ``base_lengths`` shortest tested lengths (NoLiMa takes
    its shortest contexts)."""
    scored = list(_scored(scores).values())[:base_lengths]
    return sum(scored) / len(scored) if scored else None


def relative_effective_length(
    scores: Mapping[int, float | None], share: float = DEFAULT_SHARE, base_lengths: int = 1
) -> int | None:
    """After NoLiMa: the longest tested length whose score is at least ``share`` of the base score. Meaningful
    for models whose base is below RULER's absolute bar; None when there is no base or it is 0 (a model that
    fails from the start keeps nothing)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    base = base_score(scores, base_lengths)
    if not base:
        return None
    keeping = [length for length, score in _scored(scores).items() if score >= share * base]
    return max(keeping) if keeping else None


def area_under_curve(scores: Mapping[int, float | None]) -> float | None:
    """The mean height (0-100) of the score-length curve drawn against log2 of the length, by the trapezoid
    rule: one number that ranks two models over the same lengths (one length: its score)."""
    scored = _scored(scores)
    if not scored:
        return None
    lengths = list(scored)
    if len(lengths) == 1:
        return scored[lengths[0]]
    xs = [math.log2(n) for n in lengths]
    area = sum(
        (scored[a] + scored[b]) / 2 * (xb - xa)
        for a, b, xa, xb in zip(lengths, lengths[1:], xs, xs[1:], strict=False)
    )
    return area / (xs[-1] - xs[0])

"""Bootstrap confidence intervals for mean scores: seeded percentile resampling of one group or of several."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
DEFAULT_SEED = 0


def _resampled_means(values: Sequence[float], resamples: int, rng: np.random.Generator) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    return data[picks].mean(axis=1)


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of ``values``; None for no values.

    Seeded, so a report rendered twice shows the same intervals. One value gives a zero-width interval:
    there is nothing to resample, and pretending otherwise would invent uncertainty we cannot measure.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if len(values) == 0:
        return None
    if len(values) == 1:
        return float(values[0]), float(values[0])
    return _interval(_resampled_means(values, resamples, np.random.default_rng(seed)), level)


def bootstrap_ci_of_group_means(
    groups: Sequence[Sequence[float]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float] | None:
    """The interval of the mean over groups (e.g. tasks), each group resampled within itself.

    Resampling per group keeps every group in every replicate, as the statistic it bounds (each task
    weighing the same) demands; pooling the rows would let a task with many samples dominate.
    """
    groups = [g for g in groups if len(g) > 0]
    if not groups:
        return None
    rng = np.random.default_rng(seed)
    per_group = [
        np.full(resamples, float(g[0])) if len(g) == 1 else _resampled_means(g, resamples, rng)
        for g in groups
    ]
    return _interval(np.mean(per_group, axis=0), level)

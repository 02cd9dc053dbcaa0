"""Intervals for mean scores that say what is known: Wilson for pass/fail, the bootstrap (by context where
questions share one) for graded scores, a stratified bootstrap for the mean over tasks, or none with a reason."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
# Below this many samples (contexts, where questions share them) a percentile bootstrap undercovers badly;
# graded scores then get no interval, and the tables say so.
MIN_BOOTSTRAP = 10
# Questions that share contexts are resampled by context; below this many contexts the between-context spread
# cannot be estimated, however many questions were asked.
MIN_CONTEXTS = 5


@dataclass(frozen=True)
class Interval:
    """A two-sided interval on the 0-100 scale, and how it was made: ``wilson``, ``bootstrap``, ``cluster
    bootstrap``, ``stratified bootstrap``; or ``none`` with the reason it is unavailable."""

    low: float | None
    high: float | None
    kind: str
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.low is not None and self.high is not None

    def text(self) -> str:
        return f"[{self.low:.1f}, {self.high:.1f}]" if self.available else f"(no interval: {self.reason})"


def none(reason: str) -> Interval:
    return Interval(None, None, "none", reason)


def z_value(level: float) -> float:
    """The two-sided normal quantile for ``level``, by bisection on erf (no scipy needed)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    target = level
    low, high = 0.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if math.erf(mid / math.sqrt(2)) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def wilson(successes: float, n: float, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Wilson's score interval for a proportion, on 0-1. Honest at every n: one pass of one gives about
    [0.21, 1]; it never has zero width for n < infinity."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = z_value(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding must not leave it a hair inside.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def is_pass_fail(scores: Sequence[float]) -> bool:
    """Scores (0-100) that are all 0 or 100: a pass/fail metric, whose mean is a proportion."""
    return all(s in (0.0, 100.0) for s in scores)


def _clusters(scores: Sequence[float], clusters: Sequence[Hashable] | None) -> list[np.ndarray]:
    if clusters is None:
        return [np.asarray([s]) for s in scores]
    groups: dict[Hashable, list[float]] = {}
    for score, key in zip(scores, clusters, strict=True):
        groups.setdefault(key, []).append(score)
    return [np.asarray(values) for values in groups.values()]


def resampled_means_of_groups(
    groups: list[np.ndarray], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Means of ``resamples`` bootstrap replicates that draw whole groups (contexts) with replacement; the mean
    is over questions, as the point estimate is. The replicates' spread is widened by sqrt(k / (k - 1)) for
    k groups: the plain bootstrap's variance is the plug-in one, short by that factor, which matters when
    questions share few contexts."""
    sums = np.array([g.sum() for g in groups])
    sizes = np.array([len(g) for g in groups], dtype=float)
    picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
    means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    k = len(groups)
    if k < 2:
        return means
    centre = sums.sum() / sizes.sum()
    return centre + (means - centre) * math.sqrt(k / (k - 1))


def percentile(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def resampled_means(
    scores: Sequence[float], clusters: Sequence[Hashable] | None, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of the mean of ``scores``, resampling by cluster (context) where given."""
    return resampled_means_of_groups(_clusters(scores, clusters), resamples, rng)


def mean_interval(
    scores: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """The interval of the mean of ``scores`` (0-100). ``clusters`` names each score's context: questions that
    share one are resampled together, and count as one for the minimum.

    - pass/fail, one question per context: Wilson, at every n;
    - pass/fail, questions sharing contexts: the cluster bootstrap from 10 questions in 5 contexts; below that
      Wilson with n the number of contexts (each context counted once: wider, never falsely narrow);
    - graded: the bootstrap (by context, from 5 contexts) from 10 samples; below that none, with the reason.
    A bootstrap that collapses to one point (every resample alike) is replaced by the Wilson bound of the mean,
    valid for any score in [0, 100], so no zero-width interval is printed for a sample of what could be drawn.
    """
    n = len(scores)
    if n == 0:
        return none("no scored samples")
    groups = _clusters(scores, clusters)
    shared = len(groups) < n
    mean = float(np.mean(scores))
    if is_pass_fail(scores) and not shared:
        low, high = wilson(sum(s == 100.0 for s in scores), n, level)
        return Interval(100 * low, 100 * high, "wilson")
    enough = n >= MIN_BOOTSTRAP and (not shared or len(groups) >= MIN_CONTEXTS)
    if not enough:
        if is_pass_fail(scores):
            low, high = wilson(mean / 100 * len(groups), len(groups), level)
            return Interval(100 * low, 100 * high, "wilson (per context)")
        if shared:
            return none(f"{n} questions in {len(groups)} contexts; a bootstrap by context needs {MIN_BOOTSTRAP} "
                        f"questions in {MIN_CONTEXTS} contexts")  # fmt: skip
        return none(f"{n} samples; graded scores get a bootstrap interval from {MIN_BOOTSTRAP}")
    means = resampled_means_of_groups(groups, resamples, np.random.default_rng(seed))
    low, high = percentile(means, level)
    if high - low <= 1e-9:
        low, high = wilson(mean / 100 * len(groups), len(groups), level)
        return Interval(100 * low, 100 * high, "wilson bound")
    return Interval(low, high, "cluster bootstrap" if shared else "bootstrap")


def stratified_interval(
    strata: Sequence[tuple[Sequence[float], Sequence[Hashable] | None]],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """The interval of the mean over strata (tasks), each weighing the same, by resampling within each stratum
    (by context where questions share them). Only when every stratum has at least 10 samples (and, where its
    questions share contexts, 5 contexts): otherwise unavailable, with the reason."""
    if not strata:
        return none("no scored samples")
    if len(strata) == 1:  # one task: its mean over tasks is its own mean, with its own interval
        scores, keys = strata[0]
        return mean_interval(scores, keys, level=level, resamples=resamples, seed=seed)
    small = [len(scores) for scores, _ in strata if len(scores) < MIN_BOOTSTRAP]
    if small:
        return none(f"a task has {min(small)} samples here; the mean over tasks gets an interval when every "
                    f"task has {MIN_BOOTSTRAP}")  # fmt: skip
    shared = [len(_clusters(s, k)) for s, k in strata if len(_clusters(s, k)) < len(s)]
    if shared and min(shared) < MIN_CONTEXTS:
        return none(f"a task's questions share {min(shared)} contexts here; the mean over tasks gets an interval "
                    f"when every task has {MIN_CONTEXTS}")  # fmt: skip
    rng = np.random.default_rng(seed)
    per_stratum = [
        resampled_means_of_groups(_clusters(scores, keys), resamples, rng) for scores, keys in strata
    ]
    low, high = percentile(np.mean(per_stratum, axis=0), level)
    if high - low <= 1e-9:
        return collapsed(float(np.mean([np.mean(scores) for scores, _ in strata])), strata, level)
    return Interval(low, high, "stratified bootstrap")


def collapsed(mean: float, strata: Sequence[tuple[Sequence[float], Sequence[Hashable] | None]], level: float):
    """Every resample alike (every task all right, say): the Wilson bound of the mean over every context
    under it, valid for scores in [0, 100], instead of a zero-width interval."""
    contexts = sum(len(_clusters(scores, keys)) for scores, keys in strata)
    low, high = wilson(mean / 100 * contexts, contexts, level)
    return Interval(100 * low, 100 * high, "wilson bound")

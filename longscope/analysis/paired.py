"""Paired comparisons: two methods (or two runs) on the same samples, their difference with an interval and a
test, so a user reads "12 points below full [-20, -4]" instead of two overlapping bars."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from longscope.analysis.intervals import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MIN_BOOTSTRAP,
    is_pass_fail,
)
from longscope.core import Result


@dataclass(frozen=True)
class Pair:
    """One sample scored (0-100) under the reference and under the other; ``context`` groups pairs whose
    questions share a context, which are resampled together."""

    reference: float
    other: float
    context: Hashable


@dataclass(frozen=True)
class PairedDifference:
    """other − reference in points, over ``n`` shared samples. ``low``/``high``: the paired bootstrap interval
    (None below 10 contexts, with ``reason``); ``p_value``: McNemar's exact test for pass/fail scores, else
    None; ``significant``: the test (pass/fail) or the interval excluding 0 (graded) at ``level``."""

    other: str
    reference: str
    length: int | None  # None: every length together
    n: int
    difference: float | None
    low: float | None
    high: float | None
    test: str
    p_value: float | None
    significant: bool
    level: float
    reason: str = ""

    def sentence(self) -> str:
        """``snapkv:0.5 is 12.0 points below full [-20.0, -4.0] (n=40, McNemar p=0.003, significant)``."""
        if self.difference is None:
            return f"{self.other} and {self.reference} share no scored sample"
        direction = "above" if self.difference > 0 else "below" if self.difference < 0 else "level with"
        amount = f"{abs(self.difference):.1f} points {direction}" if self.difference else direction
        interval = f" [{self.low:.1f}, {self.high:.1f}]" if self.low is not None else ""
        test = f", {self.test} p={self.p_value:.3g}" if self.p_value is not None else f", {self.test}"
        verdict = "significant" if self.significant else "not significant"
        note = f"; {self.reason}" if self.reason else ""
        return f"{self.other} is {amount} {self.reference}{interval} (n={self.n}{test}, {verdict}{note})"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: b pairs the reference passed and the other
    failed, c the reverse. Under no difference each discordant pair is a fair coin."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_difference(
    pairs: Sequence[Pair],
    *,
    other: str,
    reference: str,
    length: int | None = None,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedDifference:
    n = len(pairs)
    if n == 0:
        return PairedDifference(other, reference, length, 0, None, None, None, "none", None, False, level,
                                "no shared samples")  # fmt: skip
    diffs = np.array([p.other - p.reference for p in pairs])
    mean = float(diffs.mean())
    groups: dict[Hashable, list[float]] = {}
    for pair, diff in zip(pairs, diffs, strict=True):
        groups.setdefault(pair.context, []).append(float(diff))
    low = high = None
    reason = ""
    if len(groups) >= MIN_BOOTSTRAP:
        sums = np.array([sum(g) for g in groups.values()])
        sizes = np.array([len(g) for g in groups.values()], dtype=float)
        picks = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
        means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
        tail = (1.0 - level) / 2.0 * 100.0
        low, high = (float(v) for v in np.percentile(means, [tail, 100.0 - tail]))
    else:
        reason = f"{len(groups)} contexts; the paired interval needs {MIN_BOOTSTRAP}"
    scores = [p.reference for p in pairs] + [p.other for p in pairs]
    if is_pass_fail(scores) and len(groups) == n:
        b = sum(1 for p in pairs if p.reference == 100.0 and p.other == 0.0)
        c = sum(1 for p in pairs if p.reference == 0.0 and p.other == 100.0)
        p_value = mcnemar_exact(b, c)
        return PairedDifference(other, reference, length, n, mean, low, high, "McNemar", p_value,
                                p_value < 1 - level, level, reason)  # fmt: skip
    significant = low is not None and (low > 0 or high < 0)
    return PairedDifference(other, reference, length, n, mean, low, high, "paired bootstrap", None,
                            significant, level, reason)  # fmt: skip


def _score(row: Result) -> float | None:
    return None if row.status != "ok" or row.score is None else 100.0 * float(row.score)


def pairs_between(
    reference: Iterable[Result], other: Iterable[Result], key=lambda r: (r.sample_id, r.mode, r.turn)
) -> dict[int, list[Pair]]:
    """Scored rows of the same sample (and turn) under both, by length. Rows that failed or were skipped on
    either side have no pair and are left out."""
    ours = {key(r): r for r in reference if _score(r) is not None}
    by_length: dict[int, list[Pair]] = {}
    for row in other:
        mine = ours.get(key(row))
        score = _score(row)
        if mine is None or score is None:
            continue
        by_length.setdefault(row.length, []).append(Pair(_score(mine), score, row.sample_id))
    return by_length


def method_differences(
    results: Sequence[Result], reference: str = "full", *, level: float = DEFAULT_LEVEL
) -> list[PairedDifference]:
    """Every other method of a run against ``reference`` on the samples both scored, per length and over all
    lengths together."""
    methods = sorted({r.method for r in results if r.method != reference})
    base = [r for r in results if r.method == reference]
    out = []
    for method in methods:
        by_length = pairs_between(base, [r for r in results if r.method == method])
        for length in sorted(by_length):
            out.append(paired_difference(by_length[length], other=method, reference=reference, length=length,
                                         level=level))  # fmt: skip
        everything = [p for pairs in by_length.values() for p in pairs]
        if len(by_length) > 1:
            out.append(paired_difference(everything, other=method, reference=reference, level=level))
    return out

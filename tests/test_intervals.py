"""Intervals that say what is known, checked by simulation; effective lengths and paired differences worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longscope.analysis import intervals
from longscope.analysis.effective_length import (
    area_under_curve,
    effective_length,
    length_label,
    relative_effective_length,
)
from longscope.analysis.paired import Pair, mcnemar_exact, method_differences, paired_difference
from longscope.analysis.scores import score_table
from longscope.core import Result
from longscope.spec import format_length


def test_wilson_is_honest_at_one_sample_and_never_zero_width():
    one_pass = intervals.mean_interval([100.0])
    assert (
        one_pass.kind == "wilson" and one_pass.low == pytest.approx(20.65, abs=0.05) and one_pass.high == 100
    )
    one_fail = intervals.mean_interval([0.0])
    assert one_fail.low == 0 and one_fail.high == pytest.approx(79.35, abs=0.05)
    all_pass = intervals.mean_interval([100.0] * 30)
    assert all_pass.high == 100 and all_pass.low < 100
    assert intervals.z_value(0.95) == pytest.approx(1.959964, abs=1e-5)


@pytest.mark.parametrize("n", [5, 20, 100])
@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_wilson_covers_about_95_percent_by_simulation(n, p):
    rng = np.random.default_rng(n * 100 + int(p * 10))
    trials = 2000
    covered = 0
    for successes in rng.binomial(n, p, size=trials):
        scores = [100.0] * int(successes) + [0.0] * (n - int(successes))
        band = intervals.mean_interval(scores)
        covered += band.low <= 100 * p <= band.high
    assert 0.90 <= covered / trials <= 0.995


@pytest.mark.parametrize("n", [20, 100])
def test_the_bootstrap_of_graded_scores_covers_about_95_percent(n):
    rng = np.random.default_rng(n)
    a, b = 2.0, 3.0  # graded scores in [0, 1] with mean 0.4
    covered, trials = 0, 300
    for _ in range(trials):
        band = intervals.mean_interval(
            list(100 * rng.beta(a, b, size=n)), resamples=1000, seed=int(rng.integers(1e9))
        )
        assert band.kind == "bootstrap"
        covered += band.low <= 40.0 <= band.high
    assert 0.88 <= covered / trials <= 0.99


def test_questions_sharing_a_context_are_resampled_together():
    rng = np.random.default_rng(7)
    contexts, per_context, trials = 20, 5, 300
    cluster_covered = naive_covered = 0
    for _ in range(trials):
        # Each context has its own difficulty: its questions pass together far more often than apart.
        p_context = rng.beta(1.0, 1.0, size=contexts)
        scores, keys = [], []
        for index, p in enumerate(p_context):
            for _ in range(per_context):
                scores.append(100.0 * (rng.random() < p))
                keys.append(f"c{index}")
        seed = int(rng.integers(1e9))
        cluster = intervals.mean_interval(scores, keys, resamples=1000, seed=seed)
        naive = intervals.mean_interval(scores)
        assert cluster.kind == "cluster bootstrap" and naive.kind == "wilson"
        cluster_covered += cluster.low <= 50.0 <= cluster.high
        naive_covered += naive.low <= 50.0 <= naive.high
    assert cluster_covered / trials >= 0.88
    assert naive_covered < cluster_covered  # treating the questions as independent claims too much


def test_graded_scores_below_ten_get_no_interval_with_the_reason():
    band = intervals.mean_interval([50.0, 25.0, 75.0])
    assert not band.available and "3 samples" in band.reason and "10" in band.reason
    # A bootstrap that collapses (every graded score alike) is replaced by the Wilson bound, never zero width.
    same = intervals.mean_interval([50.0] * 12)
    assert same.kind == "wilson bound" and same.low < 50 < same.high


def test_the_mean_over_tasks_needs_ten_per_task():
    few = intervals.stratified_interval([([100.0] * 12, None), ([0.0, 100.0], None)])
    assert not few.available and "2 samples" in few.reason
    enough = intervals.stratified_interval([([0.0, 100.0] * 6, None), ([100.0] * 4 + [0.0] * 8, None)])
    assert enough.kind == "stratified bootstrap" and enough.low < (50 + 100 / 3) / 2 < enough.high


# -- effective length -------------------------------------------------------------------------------------


GRID = [4096, 8192, 16384, 32768]


@pytest.mark.parametrize(
    "scores, label, length",
    [
        ([90.0, 85.6, 80.0, 70.0], "4k", 4096),  # exactly the threshold does not pass: it must exceed it
        ([90.0, 88.0, 87.0, 86.0], ">32k", 32768),  # the longest tested length passes
        ([80.0, 70.0, 60.0, 50.0], "<4k", None),  # none passes
        ([90.0, 80.0, 88.0, 70.0], "16k", 16384),  # non-monotone: a failing 8k does not stop 16k counting
        ([85.6, 85.6, 85.6, 85.6], "<4k", None),
    ],
)
def test_effective_length_by_rulers_stated_rule(scores, label, length):
    per_length = dict(zip(GRID, scores, strict=True))
    assert effective_length(per_length) == length
    assert length_label(per_length, fmt=format_length) == label


def test_relative_effective_length_and_area_worked_by_hand():
    scores = {1024: 40.0, 2048: 36.0, 4096: 30.0}
    assert relative_effective_length(scores) == 2048  # 36 >= 0.85 x 40 = 34; 30 < 34
    assert relative_effective_length(scores, base_lengths=2) == 2048  # base 38: 32.3; 30 fails
    assert relative_effective_length({1024: 0.0, 2048: 0.0}) is None
    assert area_under_curve({1024: 100.0, 2048: 50.0, 4096: 0.0}) == pytest.approx(50.0)
    assert area_under_curve({1024: 100.0, 4096: 0.0}) == pytest.approx(50.0)
    assert area_under_curve({1024: 60.0, 2048: 60.0, 8192: 30.0}) == pytest.approx((60 + 2 * 45) / 3)
    assert area_under_curve({1024: 42.0}) == 42.0 and area_under_curve({}) is None


# -- paired comparisons -----------------------------------------------------------------------------------


def test_mcnemar_exact_worked_by_hand():
    assert mcnemar_exact(8, 1) == pytest.approx(2 * (1 + 9) / 512)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0


def _row(sample, method, score, length=1024):
    return Result(key=f"{sample}|{method}", sample_id=sample, task="niah", length=length, depth=0.5, seed=0,
                  turn=0, status="ok", score=score, method=method)  # fmt: skip


def test_paired_difference_of_methods_on_hand_made_rows():
    rows = []
    # 20 samples: full passes 18; snapkv loses 8 of those and wins 1 that full missed.
    for i in range(20):
        full = 0.0 if i in (0, 1) else 1.0
        other = 1.0 if i == 0 else (0.0 if i in range(2, 10) or i == 1 else 1.0)
        rows += [_row(f"s{i}", "full", full), _row(f"s{i}", "snapkv:0.5", other)]
    [difference] = method_differences(rows)
    assert difference.n == 20 and difference.difference == pytest.approx(100 * (11 - 18) / 20)
    assert difference.test == "McNemar" and difference.p_value == pytest.approx(mcnemar_exact(8, 1))
    assert difference.significant and difference.low < difference.difference < difference.high < 0
    assert difference.sentence().startswith("snapkv:0.5 is 35.0 points below full [")
    # Rows missing on one side are not paired.
    partial = method_differences(rows[:-2] + [_row("extra", "snapkv:0.5", 1.0)])
    assert partial[0].n == 19


def test_a_small_paired_difference_is_not_significant_and_says_why_it_has_no_interval():
    pairs = [Pair(100.0, 0.0, "a"), Pair(100.0, 100.0, "b"), Pair(0.0, 100.0, "c")]
    result = paired_difference(pairs, other="x", reference="full")
    assert (
        result.difference == 0
        and not result.significant
        and result.low is None
        and "3 contexts" in result.reason
    )


def test_the_score_table_uses_the_interval_each_cell_can_support():
    rows = [_row(f"s{i}", "full", 1.0 if i % 2 else 0.0) for i in range(4)]
    rows += [Result(key=f"g{i}", sample_id=f"g{i}", task="graded", length=1024, depth=None, seed=0, turn=0,
                    status="ok", score=0.25 * i) for i in range(4)]  # fmt: skip
    table = score_table(rows, method="full")
    assert table.cells[("niah", 1024)].interval.kind == "wilson"
    assert not table.cells[("graded", 1024)].interval.available
    overall = table.overall[1024]
    assert overall.n == 8 and not overall.interval.available and "4 samples" in overall.interval.reason
    assert math.isclose(overall.mean, (50 + 37.5) / 2)

"""Bootstrap intervals, rank-weighted averages, degradation and the score table, against hand-worked numbers."""

from __future__ import annotations

import itertools

import pytest

from longscope.analysis.bootstrap import bootstrap_ci, bootstrap_ci_of_group_means
from longscope.analysis.degradation import degradation
from longscope.analysis.scores import methods_of, score_table
from longscope.analysis.weighting import rank_weights, weighted_average
from longscope.core import Result

_keys = itertools.count()


def row(task, length, score, *, status="ok", method="full", sample_id=None, **fields) -> Result:
    n = next(_keys)
    return Result(key=f"k{n}", sample_id=sample_id or f"s{n}", task=task, length=length, depth=None, seed=n,
                  turn=0, status=status, score=None if status != "ok" else score, method=method,
                  **fields)  # fmt: skip


# -- bootstrap -------------------------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    low, high = bootstrap_ci(values)
    assert low <= sum(values) / len(values) <= high
    assert low < high
    assert bootstrap_ci(values) == (low, high)  # same seed, same interval
    assert low >= 10.0 and high <= 100.0  # resampled means never leave the data's range


def test_bootstrap_interval_narrows_with_more_samples():
    few = bootstrap_ci([0.0, 100.0] * 5)
    many = bootstrap_ci([0.0, 100.0] * 50)
    assert many[1] - many[0] < few[1] - few[0]
    assert few[0] < 50.0 < few[1] and many[0] < 50.0 < many[1]


def test_bootstrap_of_nothing_or_one_value():
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([42.0]) == (42.0, 42.0)
    assert bootstrap_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], level=1.5)


def test_group_bootstrap_resamples_within_each_group():
    # No spread inside either group: every replicate's mean over groups is exactly (100 + 0) / 2.
    assert bootstrap_ci_of_group_means([[100.0, 100.0, 100.0], [0.0]]) == (50.0, 50.0)
    low, high = bootstrap_ci_of_group_means([[0.0, 100.0] * 4, [50.0] * 8])
    assert low < 50.0 < high
    assert bootstrap_ci_of_group_means([[], []]) is None


# -- weighted averages -----------------------------------------------------------------------------------


def test_rank_weights_rise_or_fall_with_length():
    assert rank_weights([4096, 1024, 2048], "inc") == {1024: 1, 2048: 2, 4096: 3}
    assert rank_weights([4096, 1024, 2048], "dec") == {1024: 3, 2048: 2, 4096: 1}
    with pytest.raises(ValueError):
        rank_weights([1024], "up")


def test_weighted_averages_on_three_lengths_worked_by_hand():
    scores = {4096: 60.0, 1024: 90.0, 2048: 80.0}
    # inc: (1·90 + 2·80 + 3·60) / (1 + 2 + 3) = 430 / 6
    assert weighted_average(scores, "inc") == pytest.approx(430 / 6)
    # dec: (3·90 + 2·80 + 1·60) / 6 = 490 / 6
    assert weighted_average(scores, "dec") == pytest.approx(490 / 6)
    # A length without a score is left out before ranking: inc (1·90 + 2·60) / 3, dec (2·90 + 1·60) / 3.
    gap = {1024: 90.0, 2048: None, 4096: 60.0}
    assert weighted_average(gap, "inc") == pytest.approx(70.0)
    assert weighted_average(gap, "dec") == pytest.approx(80.0)
    assert weighted_average({1024: None}, "inc") is None


# -- degradation -----------------------------------------------------------------------------------------


def test_degradation_against_the_shortest_length():
    result = degradation({2048: 60.0, 1024: 80.0, 4096: 20.0})
    assert result.base_length == 1024 and result.base_score == 80.0
    assert [s.length for s in result.steps] == [1024, 2048, 4096]
    assert [s.relative for s in result.steps] == pytest.approx([1.0, 0.75, 0.25])
    assert [s.drop for s in result.steps] == pytest.approx([0.0, 20.0, 60.0])


def test_degradation_skips_an_unscored_shortest_length_and_a_zero_base():
    result = degradation({1024: None, 2048: 50.0, 4096: 25.0})
    assert result.base_length == 2048
    assert result.relative() == {1024: None, 2048: 1.0, 4096: 0.5}
    zero = degradation({1024: 0.0, 2048: 10.0})
    assert zero.relative() == {1024: None, 2048: None}  # a ratio to zero is undefined
    assert [s.drop for s in zero.steps] == [0.0, -10.0]
    assert degradation({1024: None}).base_length is None


# -- the score table -------------------------------------------------------------------------------------


def test_score_table_means_counts_and_effective_length():
    rows = [
        row("a", 1024, 1.0), row("a", 1024, 1.0), row("a", 1024, 0.0), row("a", 1024, None, status="failed"),
        row("a", 2048, 1.0), row("a", 2048, 0.0),
        row("b", 1024, 1.0),
        row("b", 2048, 1.0), row("b", 2048, 1.0, sample_id="cut"), row("b", 2048, 1.0, sample_id="gone"),
    ]  # fmt: skip
    metadata = {"cut": {"truncation": "middle"}, "gone": {"truncation": "skip"}}
    table = score_table(rows, metadata, threshold=80.0)
    a1 = table.cells[("a", 1024)]
    assert a1.n == 3 and a1.failed == 1 and a1.mean == pytest.approx(200 / 3)
    assert a1.low <= a1.mean <= a1.high
    b2 = table.cells[("b", 2048)]
    assert (b2.n, b2.truncated, b2.skipped, b2.failed) == (2, 1, 1, 0)  # the skipped sample is not scored
    # Mean over tasks: each task weighs the same, whatever its sample count.
    assert table.overall[1024].mean == pytest.approx((200 / 3 + 100) / 2)
    assert table.overall[2048].mean == pytest.approx((50 + 100) / 2)
    assert table.per_length("b") == {1024: 100.0, 2048: 100.0}
    assert table.effective_length("b") == 2048 and table.effective_length("a") is None
    assert table.effective_length() == 1024  # 83.3 clears 80 at 1k; 75 does not at 2k
    assert table.weighted("inc") == pytest.approx((1 * (200 / 3 + 100) / 2 + 2 * 75) / 3)
    assert table.totals() == {"scored": 8, "failed": 1, "truncated": 1, "skipped": 1}


def test_score_table_keeps_methods_apart():
    rows = [row("a", 1024, 1.0), row("a", 1024, 0.0, method="snapkv"), row("a", 1024, 0.0, method="snapkv")]
    assert methods_of(rows) == ["full", "snapkv"]
    assert methods_of([row("a", 1024, 1.0, method="zeta"), row("a", 1024, 1.0, method="alpha")]) == [
        "alpha",
        "zeta",
    ]
    assert score_table(rows, method="full").cells[("a", 1024)].mean == 100.0
    assert score_table(rows, method="snapkv").cells[("a", 1024)].mean == 0.0

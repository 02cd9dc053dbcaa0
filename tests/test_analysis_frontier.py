"""Accuracy-against-cost frontiers: dominance on a hand-made point set, and per method × length from rows."""

from __future__ import annotations

import pytest

from longscope.analysis.frontier import dominated, frontier
from longscope.core import Result


def test_dominance_on_a_hand_made_point_set():
    points = [
        (1.0, 50.0),  # A: cheapest; tied with F
        (2.0, 60.0),  # B
        (2.0, 40.0),  # C: A is cheaper and better
        (3.0, 60.0),  # D: B is as good and cheaper
        (3.0, 90.0),  # E: the best score
        (1.0, 50.0),  # F: identical to A; identical points do not dominate each other
        (4.0, 90.0),  # G: E is as good and cheaper
    ]
    assert dominated(points) == [False, False, True, True, False, False, True]
    assert dominated([]) == []
    assert dominated([(5.0, 0.0)]) == [False]


def cost_row(method, length, score, kv, task="t", prefill=1.0, tokens=100) -> Result:
    return Result(key=f"{method}{length}{task}{score}{kv}", sample_id="s", task=task, length=length, depth=None,
                  seed=0, turn=0, status="ok", score=score, method=method, kv_bytes=kv, prefill_s=prefill,
                  input_tokens=tokens)  # fmt: skip


def test_frontier_per_method_and_length():
    rows = [
        cost_row("full", 1024, 1.0, 100), cost_row("full", 1024, 0.5, 100, task="u"),
        cost_row("snap", 1024, 0.5, 50), cost_row("snap", 1024, 0.5, 30, task="u"),
        cost_row("worse", 1024, 0.25, 120),
        cost_row("full", 2048, 0.1, 200),  # worse and dearer than 1k points, but another length: not compared
        cost_row("none", 2048, 0.5, None),  # no cost recorded: no point
    ]  # fmt: skip
    points = {(p.method, p.length): p for p in frontier(rows, "kv_bytes")}
    assert set(points) == {("full", 1024), ("snap", 1024), ("worse", 1024), ("full", 2048)}
    full = points[("full", 1024)]
    assert full.score == pytest.approx(75.0) and full.cost == 100.0 and full.n == 2 and not full.dominated
    assert points[("snap", 1024)].cost == 40.0 and points[("snap", 1024)].score == 50.0
    assert not points[("snap", 1024)].dominated  # cheaper but worse than full: both on the frontier
    assert points[("worse", 1024)].dominated
    assert not points[("full", 2048)].dominated
    with pytest.raises(ValueError):
        frontier(rows, "dollars")


def test_frontier_on_time_and_tokens():
    rows = [cost_row("rag", 4096, 0.8, None, prefill=0.5, tokens=900),
            cost_row("full", 4096, 0.7, None, prefill=2.0, tokens=4000)]  # fmt: skip
    assert [p.dominated for p in frontier(rows, "prefill_s")] == [True, False]  # sorted by method: full, rag
    assert [(p.method, p.cost) for p in frontier(rows, "input_tokens")] == [("full", 4000.0), ("rag", 900.0)]

"""The report's breakdowns for the harder reading tasks: score by overlap, level, rounds and operations."""

from __future__ import annotations

import pytest

from longscope.analysis.breakdown import REPORT_KEYS, report_breakdowns
from longscope.core import Result


def row(sample_id: str, task: str, score: float, status: str = "ok") -> Result:
    return Result(
        key=f"{sample_id}/full/0", sample_id=sample_id, task=task, length=1024, depth=None, seed=0, turn=0,
        status=status, score=score,
    )  # fmt: skip


def test_each_key_a_run_carries_becomes_one_breakdown_in_the_declared_order():
    results = [
        row("a", "latent_needles", 1.0),
        row("b", "latent_needles", 0.0),
        row("c", "latent_needles", 1.0),
        row("d", "gsm_graph", 1.0),
        row("e", "gsm_graph", 0.0),
        row("f", "gsm_graph", 1.0, status="failed"),  # failed rows are not scores
    ]
    metadata = {
        "a": {"overlap": 0},
        "b": {"overlap": 0},
        "c": {"overlap": 2},
        "d": {"operations": 3},
        "e": {"operations": 8},
        "f": {"level": "hard"},
    }
    tables = report_breakdowns(results, metadata)
    assert [t.by for t in tables] == ["overlap", "operations"]  # "level" only on a failed row
    overlap, operations = tables
    # Overlap 0: one right of two = 50; overlap 2: 100.
    assert overlap.values == [0, 2]
    assert overlap.cells[("latent_needles", 0)].scores == [100.0, 0.0]
    assert overlap.cells[("latent_needles", 0)].mean == pytest.approx(50.0)
    assert overlap.cells[("latent_needles", 2)].mean == pytest.approx(100.0)
    assert operations.cells[("gsm_graph", 3)].mean == 100.0 and operations.cells[("gsm_graph", 8)].mean == 0.0


def test_the_keys_are_the_ones_the_new_tasks_write():
    assert REPORT_KEYS == ("overlap", "level", "rounds", "operations")
    assert report_breakdowns([], {}) == []

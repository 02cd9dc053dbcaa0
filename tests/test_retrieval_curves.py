"""Score against what a method sends: sweep series and each method beside full context, on hand-made rows."""

from __future__ import annotations

import pytest

from longscope.analysis.retrieval_curves import sweeps, versus_full
from longscope.core import Result


def row(
    method, task="niah", length=1024, score=1.0, input_tokens=100, output_tokens=4, calls=1, recall=None, i=0
):
    return Result(
        key=f"{method}-{task}-{length}-{i}", sample_id=f"{task}-{i}", task=task, length=length, depth=0.5, seed=i,
        turn=0, status="ok", score=score, input_tokens=input_tokens, output_tokens=output_tokens, method=method,
        calls=calls, retrieval_recall=recall,
    )  # fmt: skip


def test_methods_differing_only_by_k_form_one_series_ordered_by_k():
    rows = [
        row("rag-bm25(k=4)", score=1.0, input_tokens=900),
        row("rag-bm25(k=1)", score=0.0, input_tokens=300),
        row("rag-bm25(k=1)", task="vt", score=0.5, input_tokens=500),
        row("rag-bm25(k=4)", task="vt", score=0.5, input_tokens=1100),
        row("rag-bm25(k=2,chunk=128)", score=1.0),  # differs in two settings from the others: no series
        row("full", score=1.0, input_tokens=5000),
    ]
    (sweep,) = sweeps(rows)
    assert (sweep.series, sweep.setting, sweep.length) == ("rag-bm25", "k", 1024)
    assert [p.value for p in sweep.points] == [1.0, 4.0]
    # Mean over tasks of each task's mean: k=1 is (0 + 50) / 2, its tokens (300 + 500) / 2.
    assert [p.score for p in sweep.points] == [25.0, 75.0]
    assert [p.input_tokens for p in sweep.points] == [400.0, 1000.0]


def test_iterative_rounds_and_truncate_budgets_are_series_with_total_tokens():
    rows = [
        row("rag-iterative(rounds=1)", score=0.0, input_tokens=400, output_tokens=5, calls=1),
        row("rag-iterative(rounds=3)", score=1.0, input_tokens=1500, output_tokens=45, calls=3),
        row("truncate:budget=512", input_tokens=560),
        row("truncate:budget=1024", input_tokens=1070),
    ]
    found = {s.series: s for s in sweeps(rows)}
    assert set(found) == {"rag-iterative", "truncate"}
    assert found["truncate"].setting == "budget"
    iterative = found["rag-iterative"]
    assert iterative.setting == "rounds"
    assert [p.total_tokens for p in iterative.points] == [405.0, 1545.0]
    assert [p.calls for p in iterative.points] == [1.0, 3.0]


def test_each_method_beside_full_context_per_task_and_length():
    rows = [
        row("full", task="niah", score=1.0, input_tokens=4000),
        row("full", task="aggregate", score=0.8, input_tokens=4000),
        row("rag-bm25(k=2)", task="niah", score=1.0, input_tokens=600, recall=1.0),
        row("rag-bm25(k=2)", task="aggregate", score=0.2, input_tokens=600, recall=0.25),
        row("rag-bm25(k=2)", task="niah", length=2048, score=1.0),  # no full context at 2048: not compared
    ]
    by_task = {v.task: v for v in versus_full(rows)}
    assert set(by_task) == {"niah", "aggregate"}
    niah, aggregate = by_task["niah"], by_task["aggregate"]
    assert niah.token_share == pytest.approx(0.15) and niah.matches_full and niah.gap == 0.0
    assert aggregate.gap == pytest.approx(-60.0) and not aggregate.matches_full
    assert aggregate.retrieval_recall == 0.25


def test_report_section_and_summary_carry_the_sweep_and_the_comparison():
    from types import SimpleNamespace

    from longscope.report import retrieval

    data = SimpleNamespace(
        results=[
            row("full", score=1.0, input_tokens=4000),
            row("rag-bm25(k=1)", score=0.0, input_tokens=300),
            row("rag-bm25(k=2)", score=1.0, input_tokens=600),
        ]
    )
    shown = retrieval.section(data)
    assert shown["plot"].src.startswith("data:image/png;base64,")
    assert [(r["method"], r["gap"], r["token_share"], r["matches"]) for r in shown["rows"]] == [
        ("rag-bm25(k=1)", "-100.0", "7.5%", False),
        ("rag-bm25(k=2)", "+0.0", "15.0%", True),
    ]
    summary = retrieval.summary(data)
    assert [p["value"] for p in summary["sweeps"][0]["points"]] == [1.0, 2.0]
    assert retrieval.section(SimpleNamespace(results=[row("full")])) is None

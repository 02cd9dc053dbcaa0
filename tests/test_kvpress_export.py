"""The kvpress-leaderboard suite and the export in kvpress's evaluation layout: folder names, predictions.csv's
columns, metrics.json from kvpress's RULER scorer (hand-worked), config.yaml."""

from __future__ import annotations

import csv
import json

import pytest

from longscope.config import RunConfig
from longscope.core import Result, Sample, Turn, UsageError
from longscope.report.kvpress_export import export_kvpress, press_row, string_match
from longscope.store import RunStore
from longscope.suites import load_suite


def sample(sid: str, task: str, answers: tuple[str, ...]) -> Sample:
    return Sample(id=sid, task=task, context="ctx", turns=(Turn(question=f"q {sid}", answers=answers),),
                  template="{context} {question}", max_new_tokens=32)  # fmt: skip


def write_run(run_dir):
    store = RunStore.open(run_dir, create=True)
    rows = [
        ("a", "niah", ("1234",), "full", "The number is 1234."),
        ("b", "niah", ("99",), "full", "I do not know"),
        ("c", "niah_multivalue", ("11", "22", "33", "44"), "full", "11, 22\x07 and 44"),
        ("a", "niah", ("1234",), "leaderboard:expected_attention:0.5", "1234"),
        ("b", "niah", ("99",), "leaderboard:expected_attention:0.5", "99"),
        ("c", "niah_multivalue", ("11", "22", "33", "44"), "leaderboard:expected_attention:0.5", "nothing"),
        ("a", "niah", ("1234",), "snapkv(query_aware=true):0.25", "1234"),
    ]
    for sid, task, answers, method, prediction in rows:
        result = Result(key=f"{sid}-{method}", sample_id=sid, task=task, length=4096, depth=0.5, seed=0, turn=0,
                        status="ok", prediction=prediction, score=0.0, method=method, model="tiny/model")  # fmt: skip
        store.write(result, sample(sid, task, answers))
    store.close()


def test_kvpress_ruler_scorer_by_hand():
    assert string_match("11, 22\x07 and 44", ["11", "22", "33", "44"], "niah_multivalue") == 75.0
    assert string_match("The CITY is Paris", ["paris", "rome"], "qa_1") == 100.0  # any answer for qa
    assert string_match("The CITY is Paris", ["paris", "rome"], "niah_single_1") == 50.0


def test_press_rows():
    assert press_row("full") == ("no_press", 0.0, False)
    assert press_row("leaderboard:chunkkv(query_aware=true):0.875") == ("chunkkv", 0.875, True)
    assert press_row("snapkv:0.5") == ("snapkv", 0.5, False)
    assert press_row("streaming-llm:0.25") == ("streaming_llm", 0.25, False)
    assert press_row("snapkv(window_size=8):0.5") == ("snapkv_window_size_8", 0.5, False)


def test_export_writes_kvpress_folders(tmp_path):
    write_run(tmp_path / "run")
    written = export_kvpress(tmp_path / "run", tmp_path / "out")
    names = sorted(path.name for path in written)
    assert names == [
        "ruler__4096__tiny--model__expected_attention__0.50",
        "ruler__4096__tiny--model__no_press__0.00",
        "ruler__4096__tiny--model__snapkv__0.25__query_aware",
    ]
    full = tmp_path / "out" / "ruler__4096__tiny--model__no_press__0.00"
    # niah_single_2: 1234 found, 99 not → 50; niah_multivalue: 3 of 4 after the control character goes → 75.
    assert json.loads((full / "metrics.json").read_text()) == {
        "niah_multivalue": {"string_match": 75.0}, "niah_single_2": {"string_match": 50.0},
    }  # fmt: skip
    with (full / "predictions.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["question", "answer_prefix", "answer", "task", "max_new_tokens",
                              "predicted_answer", "compression_ratio"]  # fmt: skip
    assert {row["task"] for row in table} == {"niah_single_2", "niah_multivalue"}
    ea = tmp_path / "out" / "ruler__4096__tiny--model__expected_attention__0.50"
    assert json.loads((ea / "metrics.json").read_text())["niah_single_2"] == {"string_match": 100.0}
    config = (ea / "config.yaml").read_text()
    assert 'press_name: "expected_attention"' in config and "compression_ratio: 0.5" in config


def test_export_of_a_folder_without_a_run_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="not a run directory"):
        export_kvpress(tmp_path, tmp_path / "out")


def test_the_leaderboard_suite():
    suite = load_suite("kvpress-leaderboard", [])
    config = RunConfig.from_options(suite=suite)
    assert config.lengths == [4096] and config.samples == 10 and len(config.tasks) == 11
    assert config.methods[0] == "full"
    # 13 query-agnostic presses (qfilter left out) and 4 query-aware ones, at 4 ratios each.
    assert len(config.methods) == 1 + 13 * 4 + 4 * 4
    assert "leaderboard:expected_attention:0.875" in config.methods
    assert "leaderboard:finch(query_aware=true):0.25" in config.methods
    assert RunConfig.from_options(suite=suite, samples="500").samples == 500
    assert RunConfig.from_options(suite=suite, methods="full").methods == ["full"]

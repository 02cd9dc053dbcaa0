"""NoLiMa from its needle-set and book formats: the expansion of tests, exact lengths, the needle's placement,
its metrics, the refusals, and a run whose summary carries the relative effective length."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from conftest import prompt_tokens, run_cli, shared_tiny_backend

from longscope.analysis.scores import ScoreCell, ScoreTable
from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.nolima import SYSTEM, TEMPLATE, NoLiMa, distractor_place, expand

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nolima"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _task(**params) -> NoLiMa:
    return NoLiMa(data=str(FIXTURES), **params)


def test_the_needle_set_expands_as_run_tests_expands_it():
    data = _task().loaded()
    assert [t.name for t in data.tests] == [
        "0101_T01_onehop", "0101_T02_onehop", "0101_T01_twohop", "0101_T02_twohop", "0102_T01_onehop",
        "0103_T01_onehop",
    ]  # fmt: skip
    first = data.tests[0]
    assert first.needle == "In the end, {CHAR} walked up the long ramp inside the Guggenheim Bilbao."
    assert first.question == "Which character has been to Bilbao?"
    assert data.tests[2].question == "Which character has been to the Basque Country?"
    assert first.characters == ("Oriel", "Bastian", "Wren") and first.gold_answers == ()
    assert data.tests[4].distractor == "There was a bakery on the corner that sold bread every morning."
    assert data.tests[5].gold_answers == ("behind the clock",) and data.tests[5].characters == ()
    assert _task().rejected() == [
        ("needle_set.json#1.tests.T02", "field 'input_args' should be a list of texts"),
        ("needle_set.json#3", "field 'questions' is missing"),
    ]


def test_a_question_is_filled_from_the_question_as_written_each_time():
    # NoLiMa's loop re-reads the written question for every argument: with two placeholders only the last
    # one present is filled (the published questions have one).
    experiment = {
        "id": "0900", "needle": "{CHAR} met {1} in {2}.", "character_set": ["Ana"],
        "questions": {"onehop": "Who met {1} in {2}?"}, "tests": {"T01": {"input_args": ["Bo", "Oslo"]}},
    }  # fmt: skip
    [test], rejected = expand(experiment, "set.json#0")
    assert test.question == "Who met {1} in Oslo?" and test.needle == "{CHAR} met Bo in Oslo."
    assert rejected == []


@pytest.mark.parametrize("length", [512, 1024])
def test_whole_request_is_the_length_and_the_needle_ends_a_book_line(length):
    backend = shared_tiny_backend()
    task = _task()
    for seed in (0, 7):
        sample = task.build(backend, length, 0.5, seed)
        assert prompt_tokens(backend, sample) + sample.max_new_tokens == length
        character = sample.metadata["character"]
        needle = f"In the end, {character} walked up the long ramp inside "
        assert sample.answers == (character,) and character in ("Oriel", "Bastian", "Wren")
        placed = sample.evidence[0]
        assert placed.startswith(needle) or placed.startswith(f"{character} cannot eat")
        # joined to the end of a book line with a space, the line break after it (NoLiMa's BookHaystack)
        assert re.search(r"[.!?] " + re.escape(placed) + "\n", sample.context), sample.context[:200]
        assert 0.25 < sample.metadata["needle_depths"][0] < 0.75  # book lines are coarse units at 512
    assert task.build(backend, length, 0.5, 0) == task.build(backend, length, 0.5, 0)


def test_prompt_system_cap_metric_and_metadata_are_nolimas():
    backend = shared_tiny_backend()
    sample = _task().build(backend, 1024, 0.25, 1)
    user = sample.messages(0)
    assert user[0] == {"role": "system", "content": SYSTEM}
    expected = TEMPLATE.format(haystack=sample.context, question="Which character has been to Brussels?")
    assert user[1]["content"] == expected
    assert sample.max_new_tokens == 192 and _task().metric == "nolima_contains"
    meta = sample.metadata
    assert (meta["test"], meta["question_type"], meta["book"]) == (
        "0101_T02_onehop",
        "onehop",
        "rand_book_1.txt",
    )
    # seed 6 is the first test again, over the second book
    assert _task().build(backend, 1024, 0.5, 6).metadata["book"] == "rand_book_2.txt"


def test_a_distractor_lies_outside_the_zone_around_the_needle():
    backend = shared_tiny_backend()
    sample = _task().build(backend, 1024, 0.5, 4)
    assert sample.metadata["test"] == "0102_T01_onehop"
    distractor = "There was a bakery on the corner that sold bread every morning."
    assert distractor in sample.context
    assert sample.evidence == (f"{sample.metadata['character']} cannot eat anything made with wheat flour.",)
    assert abs(sample.metadata["distractor_depth"] - 0.5) >= 0.2
    # the draw itself: with the needle at 0.5 only [0, 0.1] and [0.9, 1] are left, shifted by the zone
    import random

    draws = [distractor_place(0.5, random.Random(i)) for i in range(200)]
    assert all(0.2 <= d <= 0.3 or 0.7 <= d <= 0.8 for d in draws)
    assert distractor_place(0.1, random.Random(0)) >= 0.3  # nothing to the left: always after the needle


def test_nolimas_metrics_are_case_sensitive_and_read_the_last_line_where_asked():
    assert score("nolima_contains", "It must be Oriel.", ["Oriel"]) == 1.0
    assert score("nolima_contains", "it must be oriel.", ["Oriel"]) == 0.0
    assert score("nolima_em", "  Oriel \n", ["Oriel"]) == 1.0
    assert score("nolima_em", "Oriel.", ["Oriel"]) == 0.0
    assert score("nolima_lastline_em", "Thinking...\nOriel", ["Oriel"]) == 1.0
    assert score("nolima_lastline_contains", "Oriel went there.\nSo: Wren", ["Oriel"]) == 0.0
    assert make_task("nolima(metric_name=lastline_EM)").metric == "nolima_lastline_em"


def test_bad_input_is_one_usage_error(tmp_path):
    backend = shared_tiny_backend()
    with pytest.raises(UsageError, match="nolima reads local files only: download the hub dataset"):
        NoLiMa().check(backend, 1024)
    with pytest.raises(UsageError, match=r"holds no needlesets/needle_set_hard.json"):
        _task(needle_set="needle_set_hard").check(backend, 1024)
    with pytest.raises(UsageError, match="metric_name must be one of contains, EM"):
        make_task("nolima(metric_name=f1)")
    with pytest.raises(UsageError, match="needle_set names a needle set file without .json"):
        make_task("nolima(needle_set=needle_set.json)")
    (tmp_path / "needle_set.json").write_text(json.dumps({"not": "a list"}))
    (tmp_path / "book.txt").write_text("One line.\n")
    with pytest.raises(UsageError, match="is not a NoLiMa needle set"):
        NoLiMa(data=str(tmp_path)).check(backend, 1024)
    with pytest.raises(UsageError, match="leaves no room for the prompt"):
        _task().check(backend, 192)


def test_nolimas_base_score_is_the_mean_of_its_three_shortest_lengths():
    curve = {1024: 100.0, 2048: 50.0, 4096: 50.0, 8192: 60.0}
    tasks = ["nolima(needle_set=needle_set_hard)", "niah"]
    cells = {(t, n): ScoreCell(task=t, length=n, scores=[v]) for t in tasks for n, v in curve.items()}
    table = ScoreTable(tasks=tasks, lengths=sorted(curve), cells=cells, overall={}, threshold=85.6)
    # NoLiMa: base (100 + 50 + 50) / 3 = 66.7, 85% of it 56.7: 8K (60) still keeps it
    assert table.relative_effective_length(tasks[0]) == 8192
    # any other task: the base is the shortest length, 100; 85 is kept at 1K only
    assert table.relative_effective_length(tasks[1]) == 1024
    assert table.relative_effective_length(tasks[0], base_lengths=1) == 1024  # asked for explicitly


@pytest.mark.slow  # the real command line with a model load
def test_a_run_reports_nolimas_relative_effective_length(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", "nolima(max_new_tokens=4)",
                   "--data", str(FIXTURES), "--lengths", "512,1024", "--samples", "1", "--out", str(out),
                   "--no-progress", env=OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "run.db") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM results")]
    assert statuses.count("ok") == 2 and statuses.count("skipped") == 2  # the two unusable tests
    summary = json.loads((out / "summary.json").read_text())
    relative = summary["relative_effective_length"]
    assert "nolima(max_new_tokens=4)" in relative["per_task"] and relative["share"] == 0.85
    assert relative["per_task_base_lengths"] == {"nolima(max_new_tokens=4)": 3}

"""Ada-LEval loader: TSort and BestAnswer prompts, cap, skip rule, length levels, published record counts and bad
records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import prompt_tokens, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.ada_leval import BESTANSWER_CLOSING, BESTANSWER_INSTRUCTIONS, AdaLEval
from longscope.truncation import truncate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ada_leval"


def test_bestanswer_prompt_is_ada_levals():
    backend = shared_tiny_backend()
    task = make_task(f"ada_leval:bestanswer(data={FIXTURES})")
    sample = task.build(backend, 0, None, 1)
    user = sample.messages(0)[0]["content"]
    assert user == (
        BESTANSWER_INSTRUCTIONS
        + "The question is given below.\nWhat does the {} pair mean in a Python format string?\n\n"
        + "Possible answers are given below.\n"
        + "A1:\n\nIt is a replacement field: str.format puts the next argument there.\n\n"
        + "A2:\n\nIt makes an empty dictionary inside the string.\n\n"
        + BESTANSWER_CLOSING
    )
    assert sample.answers == ("A1",) and sample.max_new_tokens == 1024 and sample.chat is True
    meta = sample.metadata
    assert (meta["ada_task"], meta["subset"], meta["length_level"], meta["num_choice"]) == (
        "bestanswer",
        "bestanswer",
        "2k",
        2,
    )
    assert meta["prompt_tokens"] == prompt_tokens(backend, sample)
    assert task.metric == "ada_leval" and task.truncation == "skip"
    assert set(task.breakdowns) == {"subset", "length_level"}


def test_tsort_prompt_is_the_records_own():
    task = AdaLEval(subset="tsort", data=str(FIXTURES))
    record = json.loads((FIXTURES / "textsort_2k.json").read_text())[0]
    sample = task.build(shared_tiny_backend(), 0, None, 0)
    assert sample.messages(0)[0]["content"] == record["prompt"]
    assert sample.context == record["prompt"]
    assert sample.answers == ("2", "4", "1", "3")
    assert (sample.metadata["ada_task"], sample.metadata["segments"]) == ("tsort", 4)


def test_bad_records_are_rejected_and_both_tasks_read_without_a_subset():
    task = AdaLEval(data=str(FIXTURES))
    assert [(r.subset, r.ref) for r in task.records()] == [
        ("tsort", "textsort_2k.json#0"),
        ("tsort", "textsort_2k.json#1"),
        ("bestanswer", "stackselect_2k.json#0"),
        ("bestanswer", "stackselect_2k.json#1"),
    ]
    assert task.rejected() == [
        ("textsort_2k.json#2", "field 'answer' is not an order of segments 1..n"),
        ("textsort_2k.json#3", "not a JSON object (str)"),
        ("stackselect_2k.json#2", "answer 'A5' is not one of A1..A3"),
        ("stackselect_2k.json#3", "field 'all_answers' is missing"),
    ]
    kinds = [task.build(shared_tiny_backend(), 0, None, i).metadata["ada_task"] for i in range(4)]
    assert kinds == ["tsort", "tsort", "bestanswer", "bestanswer"]
    # a single file is read as the task its records are
    single = AdaLEval(data=str(FIXTURES / "stackselect_2k.json"))
    assert single.build(shared_tiny_backend(), 0, None, 0).metadata["ada_task"] == "bestanswer"


def test_published_record_counts_and_limit(tmp_path):
    rows = [{"prompt": f"Sort {i}", "answer": [1, 2]} for i in range(1005)]
    (tmp_path / "textsort_4k.json").write_text(json.dumps(rows))
    (tmp_path / "textsort_32k.json").write_text(json.dumps(rows[:230]))
    assert len(AdaLEval(subset="tsort", length_level="4k", data=str(tmp_path)).records()) == 1000
    assert len(AdaLEval(subset="tsort", length_level="32k", data=str(tmp_path)).records()) == 200
    assert len(AdaLEval(subset="tsort", length_level="32k", data=str(tmp_path), limit=220).records()) == 220


def test_length_levels_and_missing_data():
    with pytest.raises(UsageError, match="unknown length_level '6k'; levels: 1k, 2k, 4k, 8k"):
        make_task("ada_leval:tsort(length_level=6k)")
    assert AdaLEval(subset="bestanswer", length_level="6k").data_files()[0] == "stackselect_6k.json"
    with pytest.raises(UsageError, match="holds none of the files"):
        AdaLEval(subset="tsort", length_level="8k", data=str(FIXTURES)).records()
    with pytest.raises(UsageError, match=r"not on the dataset hub: download textsort_2k.json.*--data PATH$"):
        AdaLEval(subset="tsort").records()


def test_over_long_records_are_skipped():
    backend = shared_tiny_backend()
    task = AdaLEval(subset="bestanswer", data=str(FIXTURES))
    sample = task.build(backend, 0, None, 0)
    kept, record = truncate(backend, sample, sample.metadata["realised_tokens"] - 1, task.truncation)
    assert kept is None and record["truncation"] == "skip"


def test_end_to_end_on_a_tiny_model():
    backend = shared_tiny_backend()
    task = AdaLEval(data=str(FIXTURES), max_new_tokens=3)
    for index in (0, 2):
        sample = task.build(backend, 0, None, index)
        generation = backend.generate(sample.request())
        assert generation.output_tokens <= 3
        assert score(task.metric, generation.text, sample.answers, sample.metadata) in (0.0, 1.0)
    tsort = task.build(backend, 0, None, 0)
    assert score(task.metric, "Answer: [2, 4, 1, 3]", tsort.answers, tsort.metadata) == 1.0
    best = task.build(backend, 0, None, 2)
    assert score(task.metric, "Answer: A2", best.answers, best.metadata) == 1.0


def test_tasks_detail_says_how_tsort_follows_ada_leval():
    from longscope.listing import task_detail

    text = " ".join(task_detail("ada_leval", AdaLEval, 100).split())
    assert "up to the shorter of the two" in text and "full_order" in text
    assert "TypeError" in text

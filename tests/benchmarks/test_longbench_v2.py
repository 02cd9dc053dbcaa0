"""LongBench v2 loader on a fixture in its published format: prompt, cap, breakdowns, filters, truncation, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.longbench_v2 import LongBenchV2
from longscope.truncation import request_tokens, truncate

FIXTURE = Path(__file__).parent.parent / "fixtures" / "longbench_v2"


def _rows() -> list[dict]:
    return json.loads((FIXTURE / "data.json").read_text(encoding="utf-8"))


def _samples(task: LongBenchV2):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _expected_prompt(row: dict) -> str:
    """prompts/0shot.txt filled in as v2's pred.py does it."""
    return (
        "Please read the following text and answer the question below.\n\n<text>\n"
        + row["context"].strip()
        + "\n</text>\n\nWhat is the correct answer to this question: "
        + row["question"].strip()
        + f"\nChoices:\n(A) {row['choice_A']}\n(B) {row['choice_B']}\n(C) {row['choice_C']}\n(D) {row['choice_D']}"
        + '\n\nFormat your response as follows: "The correct answer is (insert answer here)".'
    )


def test_records_in_the_0shot_prompt_with_cap_chat_and_metric():
    task = make_task("longbench_v2").with_data(str(FIXTURE))  # a directory holding data.json
    samples = _samples(task)
    rows = [row for row in _rows() if row["answer"] != "E"]
    assert len(samples) == len(rows) == 6
    backend = shared_tiny_backend()
    for sample, row in zip(samples, rows, strict=True):
        assert sample.messages(0)[0]["content"] == _expected_prompt(row)
        assert (sample.max_new_tokens, sample.chat, sample.answers) == (128, True, (row["answer"],))
        assert sample.id == f"longbench_v2/{row['_id']}"
        assert sample.metadata["prompt_tokens"] == backend.count_tokens(backend.render(sample.messages(0)))
    assert task.metric == "longbench_v2_choice"
    # A choice holding braces is kept literally.
    assert "(C) Call support {ext. 5}" in samples[2].messages(0)[0]["content"]


def test_invalid_answer_is_rejected_by_reference():
    task = LongBenchV2(data=str(FIXTURE / "data.json"))
    assert task.rejected() == [("data.json#3", "answer 'E' is not one of A, B, C, D")]


def test_breakdowns_cover_difficulty_by_length_class():
    samples = _samples(LongBenchV2(data=str(FIXTURE)))
    cells = {s.metadata["difficulty_length"] for s in samples}
    assert cells == {f"{d}/{n}" for d in ("easy", "hard") for n in ("short", "medium", "long")}
    for sample in samples:
        meta = sample.metadata
        assert meta["difficulty_length"] == f"{meta['difficulty']}/{meta['length_class']}"
        assert meta["benchmark"] == "longbench_v2" and meta["subset"] == ""
    assert set(LongBenchV2.breakdowns) >= {"difficulty", "length_class", "difficulty_length"}


def test_difficulty_and_length_filters():
    hard = _samples(LongBenchV2(data=str(FIXTURE), difficulty="hard"))
    assert [s.metadata["length_class"] for s in hard] == ["short", "medium", "long"]
    assert {s.metadata["difficulty"] for s in hard} == {"hard"}
    [one] = _samples(make_task("longbench_v2(difficulty=easy,length=long)").with_data(str(FIXTURE)))
    assert one.metadata["difficulty_length"] == "easy/long"
    assert make_task("longbench_v2(difficulty=easy,length=long)").label() == (
        "longbench_v2(difficulty=easy,length=long)"
    )
    with pytest.raises(UsageError, match="difficulty 'medium' is not one of easy, hard"):
        make_task("longbench_v2(difficulty=medium)")
    with pytest.raises(UsageError, match="longbench_v2 has no subsets"):
        make_task("longbench_v2:short")


def test_hand_written_replies_score_by_v2s_rule():
    samples = _samples(LongBenchV2(data=str(FIXTURE)))
    gold = [s.answers[0] for s in samples]
    assert gold == ["B", "C", "D", "A", "B", "C"]
    replies = [
        "The correct answer is (B)",  # right
        "**The correct answer is (C)**",  # right once the bold is removed
        "The correct answer is (A)",  # wrong letter
        "A",  # a bare letter chooses nothing under v2's rule
        "I think the correct answer is (B)",  # lower-case phrase: nothing
        "After reading the table, The correct answer is C.",  # right
    ]
    scores = [
        score("longbench_v2_choice", reply, s.answers) for reply, s in zip(replies, samples, strict=True)
    ]
    assert scores == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_an_over_long_record_is_cut_in_the_middle(tmp_path):
    row = _rows()[0]
    filler = " ".join(f"Ledger line {i} records an ordinary transfer." for i in range(300))
    row["context"] = "HEADMARK annual report. " + filler + " Closing note TAILMARK"
    (tmp_path / "data.json").write_text(json.dumps([row]), encoding="utf-8")
    task = LongBenchV2(data=str(tmp_path))
    [sample] = _samples(task)
    backend = shared_tiny_backend()
    window = 500
    assert sample.metadata["realised_tokens"] > window
    kept, info = truncate(backend, sample, window, task.truncation)
    assert info["truncation"] == "middle" and info["truncated_tokens"] > 0
    assert request_tokens(backend, kept) <= window
    assert kept.context.startswith("HEADMARK") and kept.context.endswith("TAILMARK")
    assert "Ledger line 150 " not in kept.context
    assert kept.messages(0)[0]["content"].endswith('"The correct answer is (insert answer here)".')
    assert "(D) They tripled" in kept.messages(0)[0]["content"]


def test_end_to_end_through_the_runner(tmp_path):
    from conftest import tiny_backend

    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    config = RunConfig(model="hf:tiny", tasks=["longbench_v2(difficulty=hard)"], data=str(FIXTURE), limit=2)
    run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    ok = [row for row in rows if row.status == "ok"]
    assert len(ok) == 2 and {row.task for row in ok} == {"longbench_v2(limit=2,difficulty=hard)"}
    assert all(row.score in (0.0, 1.0) for row in ok)
    skipped = [row for row in rows if row.status != "ok"]
    assert [row.error for row in skipped] == [
        "invalid record data.json#3: answer 'E' is not one of A, B, C, D"
    ]


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    assert LongBenchV2().hub_args() == {"path": "THUDM/LongBench-v2", "split": "train"}
    with pytest.raises(
        UsageError, match=r"^cannot reach the dataset hub for THUDM/LongBench-v2 .*--data PATH$"
    ):
        LongBenchV2().records()
    assert attempts == []

"""BABILong loader: its prompt, cap and skip rule, length levels and tasks, bad records, and its answer check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import prompt_tokens, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks import base
from longscope.tasks.benchmarks.babilong import Babilong, prompts
from longscope.truncation import truncate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "babilong"


def test_prompt_is_babilongs_default_with_context_tags_and_question():
    task = make_task(f"babilong:qa1(data={FIXTURES})")
    sample = task.build(shared_tiny_backend(), 0, None, 0)
    user = sample.messages(0)[0]["content"]
    prompt = prompts()["qa1"]
    expected_head = (
        f"{prompt['instruction']}\n\n{prompt['examples']}\n\n{prompt['post_prompt']}\n\n<context>\n"
    )
    assert user.startswith(expected_head)
    assert user.endswith("\n</context>\n\nQuestion: Where is Mary?")
    assert "Mary moved to the bathroom." in sample.context and sample.context == sample.context.strip()
    assert user.startswith("I will give you context with the facts about positions of different persons")
    assert sample.max_new_tokens == 20 and sample.chat is True and sample.system is None
    assert sample.answers == ("bathroom",)
    assert task.metric == "babilong" and task.truncation == "skip"
    meta = sample.metadata
    assert (meta["length_level"], meta["qa_task"], meta["subset"]) == ("4k", "qa1", "qa1")
    assert set(task.breakdowns) == {"length_level", "qa_task"}
    assert meta["prompt_tokens"] == prompt_tokens(shared_tiny_backend(), sample)


def test_parts_of_the_prompt_can_be_left_out_as_babilongs_scripts_allow():
    task = Babilong(subset="qa1", data=str(FIXTURES), instruction=False, examples=False)
    user = task.build(shared_tiny_backend(), 0, None, 0).messages(0)[0]["content"]
    assert user.startswith(prompts()["qa1"]["post_prompt"] + "\n\n<context>\n")
    bare = Babilong(subset="qa1", data=str(FIXTURES), instruction=False, examples=False, post_prompt=False)
    assert bare.build(shared_tiny_backend(), 0, None, 0).messages(0)[0]["content"].startswith("<context>\n")


def test_bad_records_are_rejected_by_line_and_every_published_task_present_is_read():
    task = Babilong(data=str(FIXTURES))  # no subset: qa1..qa10 at 4k, those whose files are there
    assert [(r.subset, r.ref) for r in task.records()] == [
        ("qa1", "qa1.jsonl:1"),
        ("qa1", "qa1.jsonl:2"),
        ("qa2", "qa2.jsonl:1"),
    ]
    rejected = dict(task.rejected())
    assert rejected["qa1.jsonl:3"].startswith("not valid JSON")
    assert rejected["qa1.jsonl:4"] == "field 'target' should be str, got int"
    assert len(task.work([4096], [0.5], [0])) == 3
    qa2 = task.build(shared_tiny_backend(), 0, None, 2)
    assert qa2.metadata["qa_task"] == "qa2" and qa2.question == "Where is the football?"
    assert qa2.messages(0)[0]["content"].startswith(prompts()["qa2"]["instruction"])


def test_a_single_file_is_read_as_the_task_and_level_its_name_and_folder_say():
    task = Babilong(data=str(FIXTURES / "0k" / "qa8.jsonl"))
    sample = task.build(shared_tiny_backend(), 0, None, 0)
    assert (sample.metadata["qa_task"], sample.metadata["length_level"]) == ("qa8", "0k")
    assert sample.answers == ("apple,milk",)
    assert sample.messages(0)[0]["content"].startswith(prompts()["qa8"]["instruction"])


def test_a_file_that_names_no_task_needs_the_subset(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text((FIXTURES / "4k" / "qa2.jsonl").read_text())
    with pytest.raises(UsageError, match="cannot tell which bAbI task"):
        Babilong(data=str(path)).build(shared_tiny_backend(), 0, None, 0)
    assert Babilong(subset="qa2", data=str(path)).build(shared_tiny_backend(), 0, None, 0).answers == (
        "kitchen",
    )


def test_length_level_selects_the_folder_and_the_hub_config(monkeypatch):
    with pytest.raises(UsageError, match="holds none of the files"):
        Babilong(subset="qa1", data=str(FIXTURES), length_level="8k").records()
    with pytest.raises(UsageError, match="unknown length_level '3k'"):
        make_task("babilong:qa1(length_level=3k)")
    with pytest.raises(UsageError, match="unknown subset 'qa21'"):
        make_task("babilong:qa21")
    asked = []

    def fake_hub(args, name=None):
        asked.append(args)
        return [{"input": "Mary went to the office.", "question": "Where is Mary?", "target": "office"}]

    monkeypatch.setattr(base, "load_hub", fake_hub)
    task = Babilong(subset="qa3", length_level="16k")
    assert [r.ref for r in task.records()] == ["hub:RMT-team/babilong/qa3#0"]
    assert asked == [{"path": "RMT-team/babilong", "name": "16k", "split": "qa3"}]
    assert task.build(shared_tiny_backend(), 0, None, 0).metadata["length_level"] == "16k"


def test_over_long_records_are_skipped_not_cut():
    backend = shared_tiny_backend()
    task = Babilong(subset="qa1", data=str(FIXTURES))
    sample = task.build(backend, 0, None, 0)
    kept, record = truncate(backend, sample, sample.metadata["realised_tokens"] - 5, task.truncation)
    assert kept is None and record["truncation"] == "skip"
    fits, record = truncate(backend, sample, sample.metadata["realised_tokens"], task.truncation)
    assert fits is not None and record["truncation"] == "none"


def test_end_to_end_on_a_tiny_model():
    backend = shared_tiny_backend()
    task = Babilong(subset="qa1", data=str(FIXTURES), max_new_tokens=4)
    sample = task.build(backend, 0, None, 1)
    generation = backend.generate(sample.request())
    assert generation.output_tokens <= 4
    assert score(task.metric, generation.text, sample.answers, sample.metadata) in (0.0, 1.0)
    assert score(task.metric, "garden", sample.answers, sample.metadata) == 1.0
    assert dataclasses.replace(task, max_new_tokens=None).build(backend, 0, None, 1).max_new_tokens == 20

"""Needle Threading loader: haystack + question prompt, caps per value, grid metadata, bad records, the hub split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import prompt_tokens, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score_with_details
from longscope.tasks import make_task
from longscope.tasks.benchmarks import base
from longscope.tasks.benchmarks.needle_threading import NeedleThreading, values_of
from longscope.truncation import truncate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "needle_threading"


def _published(name: str) -> list[dict]:
    return json.loads((FIXTURES / "json_data" / name).read_text())


def test_single_needle_prompt_is_haystack_newline_question():
    backend = shared_tiny_backend()
    task = make_task(f"needle_threading:single_needle(data={FIXTURES})")
    record = _published("Single_Needle.json")[1]
    sample = task.build(backend, 0, None, 1)
    assert sample.messages(0)[0]["content"] == record["haystack"] + "\n" + record["question"]
    assert sample.context == record["haystack"] and sample.answers == (record["values"],)
    assert sample.max_new_tokens == 100 and sample.chat is True
    meta = sample.metadata
    assert (meta["context_length"], meta["needle_depth"], meta["num_needles"]) == (
        record["context_length"],
        "75",
        1,
    )
    assert meta["prompt_tokens"] == prompt_tokens(backend, sample)
    assert set(task.breakdowns) >= {"context_length", "needle_depth"}
    assert task.metric == "needle_threading" and task.truncation == "skip"
    assert sample.id == "needle_threading:single_needle/1"


def test_several_values_read_from_python_or_json_lists_and_cap_per_value():
    multiple = NeedleThreading(subset="multiple_needles", data=str(FIXTURES)).build(
        shared_tiny_backend(), 0, None, 0
    )
    record = _published("Multiple_Needles.json")[0]
    assert list(multiple.answers) == values_of(record["values"]) and len(multiple.answers) == 3
    assert multiple.max_new_tokens == 300
    threads = NeedleThreading(subset="multi_threads", data=str(FIXTURES)).build(
        shared_tiny_backend(), 0, None, 0
    )
    assert len(threads.answers) == 2 and threads.max_new_tokens == 200
    assert (threads.metadata["thread_length"], threads.metadata["num_threads"]) == (2, 2)
    assert threads.metadata["thread_direction"] == "forward"
    assert values_of("['a', 'b']") == ["a", "b"] and values_of('["a"]') == ["a"] and values_of(" x ") == ["x"]


def test_bad_records_are_rejected_and_all_tasks_present_are_read():
    task = NeedleThreading(data=str(FIXTURES))
    assert [(r.subset, r.ref) for r in task.records()] == [
        ("single_needle", "Single_Needle.json#0"),
        ("single_needle", "Single_Needle.json#1"),
        ("multiple_needles", "Multiple_Needles.json#0"),
        ("multi_threads", "Multi_Threads.jsonl:1"),
    ]
    rejected = dict(task.rejected())
    assert rejected["Single_Needle.json#2"] == "field 'values' is missing"
    assert rejected["Multiple_Needles.json#1"] == "field 'values' holds an empty value"
    assert rejected["Multi_Threads.jsonl:2"].startswith("not valid JSON")


def test_hub_split_names_are_the_published_ones(monkeypatch):
    asked = []

    def fake_hub(args, name=None):
        asked.append(args)
        return _published("Single_Needle.json")[:1]

    monkeypatch.setattr(base, "load_hub", fake_hub)
    assert len(NeedleThreading(subset="conditional_needles").records()) == 1
    assert asked == [{"path": "jonathan-roberts1/needle-threading", "split": "Conditional_Needles"}]
    with pytest.raises(UsageError, match="unknown subset 'threads'"):
        make_task("needle_threading:threads")


def test_over_long_records_are_skipped():
    backend = shared_tiny_backend()
    task = NeedleThreading(subset="single_needle", data=str(FIXTURES))
    sample = task.build(backend, 0, None, 0)
    kept, record = truncate(backend, sample, sample.metadata["realised_tokens"] - 1, task.truncation)
    assert kept is None and record["truncation"] == "skip"


def test_end_to_end_on_a_tiny_model():
    backend = shared_tiny_backend()
    task = NeedleThreading(subset="single_needle", data=str(FIXTURES), max_new_tokens=5)
    sample = task.build(backend, 0, None, 0)
    generation = backend.generate(sample.request())
    assert generation.output_tokens <= 5
    value, _ = score_with_details(task.metric, generation.text, sample.answers, sample.metadata)
    assert value in (0.0, 1.0)
    assert score_with_details(task.metric, f'"{sample.answers[0]}"', sample.answers)[0] == 1.0

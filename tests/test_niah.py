"""NIAH tasks: determinism, the cache, answers recoverable from the context, parameters and the plane."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample, UsageError
from longscope.tasks import cached_sample, make_task

NEEDLE = re.compile(r"The secret (?:number|word|code) for (\S+) is (\S+?)\.(?:\s|$)")


def solve(sample: Sample) -> list[str]:
    """A reference solver: read every needle into a dict and look the asked keys up."""
    found: dict[str, list[str]] = {}
    for key, value in NEEDLE.findall(sample.context):
        found.setdefault(key, []).append(value)
    asked = re.findall(r"for (.+?) in the text above", sample.question)[0]
    keys = re.split(r", | and ", asked)
    return [value for key in keys for value in found[key]]


NIAH_TASKS = ["niah", "niah_multikey", "niah_multivalue", "niah_multiquery"]


@pytest.mark.parametrize("name", NIAH_TASKS)
@pytest.mark.parametrize("types", ["key_type=word,value_type=number", "key_type=uuid,value_type=uuid",
                                   "key_type=number,value_type=word"])  # fmt: skip
def test_gold_answers_are_recoverable_from_the_context(name, types):
    backend = tiny_backend()
    sample = make_task(f"{name}({types})").build(backend, 2048, 0.4, seed=7)
    assert sorted(solve(sample)) == sorted(sample.answers)
    task = make_task(name)
    needles = len(NEEDLE.findall(sample.context))
    assert needles == task.num_queries * task.num_values + task.num_keys - task.num_queries


def test_same_key_gives_byte_identical_samples_and_the_cache_returns_them(isolated_cache):
    backend = tiny_backend()
    task = make_task("niah_multikey")
    first = task.build(backend, 1024, 0.5, seed=11).to_json()
    assert task.build(backend, 1024, 0.5, seed=11).to_json() == first
    cached = cached_sample(task, backend, 1024, 0.5, 11)
    assert cached.to_json() == first
    files = list(isolated_cache.rglob("*.json"))
    assert len(files) == 1 and files[0].read_text() == first
    assert cached_sample(task, backend, 1024, 0.5, 11).to_json() == first
    assert Sample.from_json(first) == cached


def test_seed_changes_the_question_and_length_does_not():
    backend = tiny_backend()
    task = make_task("niah")
    a = task.build(backend, 1024, 0.5, seed=1)
    b = task.build(backend, 1024, 0.5, seed=2)
    c = task.build(backend, 2048, 0.5, seed=1)
    assert a.answers != b.answers
    assert a.answers == c.answers and a.question == c.question
    assert len(c.context) > len(a.context)


def test_metadata_places_every_task_on_the_plane():
    backend = tiny_backend()
    for name in NIAH_TASKS:
        task = make_task(name)
        meta = task.build(backend, 1024, 0.5, seed=0).metadata
        assert 0 <= meta["diffusion"] <= 1 and 0 <= meta["scope"] <= 1
        assert meta["params"] == task.params()
    assert make_task("niah_multikey").diffusion > make_task("niah").diffusion
    assert make_task("niah_multivalue").scope > make_task("niah").scope


@pytest.mark.parametrize(
    "spec,message",
    [
        ("niah(num_keys=0)", "num_keys must be at least 1"),
        ("niah(num_queries=3)", "num_queries=3 exceeds num_keys=1"),
        ("niah(key_type=colour)", "key_type"),
        ("niah(bogus=1)", "unknown parameter 'bogus'"),
        ("nope", "known tasks:"),
    ],
)
def test_bad_parameters_name_the_parameter(spec, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        make_task(spec).check(tiny_backend(), 1024)


def test_label_lists_only_changed_parameters():
    assert make_task("niah").label() == "niah"
    assert make_task("niah(haystack=noise, num_keys=2)").label() == "niah(haystack=noise,num_keys=2)"

"""NIAH tasks: answers recoverable from the context, the plane, labels."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample
from longscope.tasks import make_task

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


def test_more_keys_are_more_diffuse_and_more_values_wider_in_scope():
    assert make_task("niah_multikey").diffusion > make_task("niah").diffusion
    assert make_task("niah_multivalue").scope > make_task("niah").scope


def test_label_lists_only_changed_parameters():
    assert make_task("niah").label() == "niah"
    assert make_task("niah(haystack=noise, num_keys=2)").label() == "niah(haystack=noise,num_keys=2)"

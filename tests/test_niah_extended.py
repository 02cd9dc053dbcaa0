"""NIAH's all-needle haystack: asked keys only in real needles, a solver, needle-like filler, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import shared_tiny_backend as backend

from longscope.haystack import corpus
from longscope.tasks import make_task
from longscope.tasks.niah import _needle_filler

SENTENCE = re.compile(r"The secret (?:number|word|code) for (\S+) is (\S+?)\.(?:\s|$)")


def asked_keys(question: str) -> list[str]:
    return re.split(r", | and ", re.findall(r"for (.+?) in the text above", question)[0])


def solve(context: str, question: str) -> list[str]:
    """Read every needle-format sentence; the asked keys' values are the answer (filler keys never collide)."""
    found: dict[str, list[str]] = {}
    for key, value in SENTENCE.findall(context):
        found.setdefault(key, []).append(value)
    return [value for key in asked_keys(question) for value in found[key]]


@pytest.mark.parametrize(
    "spec",
    [
        "niah(haystack=needles)",
        "niah_multikey(haystack=needles)",
        "niah_multivalue(haystack=needles,key_type=number,value_type=word)",
        "niah_multiquery(haystack=needles,key_type=uuid,value_type=uuid)",
    ],
)
def test_solver_finds_the_asked_values_and_no_filler_key_is_a_needle_key(spec):
    task = make_task(spec)
    sample = task.build(backend(), 4096, 0.6, seed=9)
    assert sorted(solve(sample.context, sample.question)) == sorted(sample.answers)
    sentences = SENTENCE.findall(sample.context)
    needles = task.num_queries * task.num_values + task.num_keys - task.num_queries
    # Almost all of the context is filler sentences, and the asked keys appear only in their own needles.
    assert len(sentences) > 5 * needles
    keys = [key for key, _ in sentences]
    for key in asked_keys(sample.question):
        assert keys.count(key) == task.num_values


def test_filler_units_read_like_needles_and_the_text_before_them_is_neutral():
    filler = _needle_filler("secret number", "word", "number", {"brave-otter"}, base=123)
    units = filler.units(0, 300)
    assert all(unit.startswith(" ") and SENTENCE.fullmatch(unit.strip() + " ") for unit in units)
    assert all(SENTENCE.findall(unit)[0][0] != "brave-otter" for unit in units)
    assert filler.unit(-1) in corpus("noise").sentences and filler.unit(-7) in corpus("noise").sentences
    # Deterministic whatever the order of the calls.
    again = _needle_filler("secret number", "word", "number", {"brave-otter"}, base=123)
    assert [again.unit(i) for i in reversed(range(300))] == units[::-1]


def test_excluded_keys_are_redrawn():
    # A one-word key space of a number key type is large, so exclude the keys actually drawn and check they
    # are replaced, not kept.
    first = _needle_filler("secret number", "number", "number", set(), base=7)
    drawn = {SENTENCE.findall(first.unit(i))[0][0] for i in range(50)}
    second = _needle_filler("secret number", "number", "number", drawn, base=7)
    assert not drawn & {SENTENCE.findall(second.unit(i))[0][0] for i in range(50)}


def test_needles_haystack_is_the_most_diffuse_and_defaults_are_unchanged():
    assert make_task("niah(haystack=needles)").diffusion == 0.7
    assert make_task("niah(haystack=needles)").diffusion > make_task("niah").diffusion
    assert make_task("niah").diffusion > make_task("niah(haystack=noise)").diffusion
    assert make_task("niah_multikey(haystack=needles)").diffusion == 1.0
    assert make_task("niah").haystack == "essay"
    assert make_task("niah(haystack=needles)").label() == "niah(haystack=needles)"

"""Distraction tasks: exact length, solvers that skip false facts and map synonyms, contains_only, parameters."""

from __future__ import annotations

import re

import pytest
from conftest import prompt_tokens
from conftest import shared_tiny_backend as backend

from longscope.core import UsageError
from longscope.scoring import score, score_with_details
from longscope.scoring.distraction import FORBIDDEN, split_answers
from longscope.tasks import make_task
from longscope.tasks.distraction import ADJECTIVE_SYNONYMS, NOUN_SYNONYMS

# The true fact's exact form, as a sentence of its own.
TRUE_FACT = re.compile(r"(?:^|(?<=\s))The secret number for (\S+) is (\d+)\.")
ACCESS = re.compile(r"The access code for the (\w+) (\w+) is (\d+)\.")


def solve_confusing(context: str, question: str) -> str:
    """Only a plain statement about exactly the asked key counts; look-alike keys and statements marked as
    wrong do not have that form."""
    key = re.search(r"secret number for (\S+)\?", question).group(1)
    values = [value for k, value in TRUE_FACT.findall(context) if k == key]
    assert len(values) == 1
    return values[0]


def solve_substitution(context: str, question: str) -> str:
    """Map the question's words to their synonym classes and find the one needle whose key has both."""
    adj_class = {word: i for i, words in enumerate(ADJECTIVE_SYNONYMS) for word in words}
    noun_class = {word: i for i, words in enumerate(NOUN_SYNONYMS) for word in words}
    adj, noun = re.search(r"access code for the (\w+) (\w+)\?", question).groups()
    hits = [
        value
        for a, n, value in ACCESS.findall(context)
        if adj_class[a] == adj_class[adj] and noun_class[n] == noun_class[noun]
    ]
    assert len(hits) == 1
    return hits[0]


@pytest.mark.parametrize("template,style", [("chatml", "bytelevel"), ("inst", "metaspace")])
@pytest.mark.parametrize(
    "spec", ["confusing_facts", "confusing_facts(distractors=11,haystack=noise)", "keyword_substitution"]
)
def test_whole_request_is_exactly_the_target_length(template, style, spec):
    b = backend(template, style)
    for length in (1024, 2048, 4096):
        sample = make_task(spec).build(b, length, 0.6, seed=8)
        assert prompt_tokens(b, sample) + sample.max_new_tokens == length


@pytest.mark.parametrize("distractors", [0, 1, 3, 11])
def test_confusing_facts_solver_keeps_only_the_true_fact(distractors):
    task = make_task(f"confusing_facts(distractors={distractors})")
    for seed in range(3):
        sample = task.build(backend(), 2048, 0.4, seed=seed)
        gold, bad = split_answers(sample.answers)
        assert [solve_confusing(sample.context, sample.question)] == gold
        # Every number in the context is the true one or a forbidden false one, and the false ones are
        # look-alikes of the true one (same length and first digit, at most two digits apart).
        numbers = re.findall(r"\d+", sample.context)
        assert sorted(numbers) == sorted(gold + bad) and len(set(numbers)) == distractors + 1
        assert all(len(v) == 7 and v[0] == gold[0][0] for v in bad)
        assert all(sum(a != b for a, b in zip(v, gold[0], strict=True)) <= 2 for v in bad)
        # The false facts sit right beside the true one.
        spots = [sample.context.index(v) for v in numbers]
        assert max(spots) - min(spots) < 120 * (distractors + 1)
        assert sample.metadata["distractors"] == distractors


def test_confusing_facts_mix_both_kinds_of_false_fact():
    sample = make_task("confusing_facts(distractors=2)").build(backend(), 1024, 0.5, seed=0)
    key = re.search(r"secret number for (\S+)\?", sample.question).group(1)
    facts = [s for s in re.split(r"(?<=\.) ", sample.context) if re.search(r"\d", s)]
    marked = [f for f in facts if re.search(r"wrong|out of date|misprint|trust|mistake", f)]
    assert len(facts) == 3 and len(marked) == 1 and key in marked[0]


@pytest.mark.parametrize("distractors", [0, 2, 4, 9])
def test_keyword_substitution_solver_maps_synonyms(distractors):
    task = make_task(f"keyword_substitution(distractors={distractors})")
    for seed in range(3):
        sample = task.build(backend(), 2048, 0.5, seed=seed)
        gold, bad = split_answers(sample.answers)
        assert [solve_substitution(sample.context, sample.question)] == gold and len(bad) == distractors
        adj, noun = re.search(r"access code for the (\w+) (\w+)\?", sample.question).groups()
        # A plain search for the asked place finds nothing: neither word is in the true needle.
        assert f"the {adj} {noun}" not in sample.context
        true_needle = next(n for n in ACCESS.findall(sample.context) if n[2] == gold[0])
        assert adj not in true_needle[:2] and noun not in true_needle[:2]
        if distractors >= 2:
            # The first traps use the question's own words literally.
            places = [(a, n) for a, n, _ in ACCESS.findall(sample.context)]
            assert any(a == adj for a, _ in places) and any(n == noun for _, n in places)


def test_synonym_tables_are_unambiguous():
    for table in (ADJECTIVE_SYNONYMS, NOUN_SYNONYMS):
        words = [w for group in table for w in group]
        assert len(words) == len(set(words))
        for group in table:
            assert len(group) >= 2
            assert not any(a != b and a in b for a in group for b in group)


def test_same_seed_same_sample_other_seed_other_question():
    for name in ("confusing_facts", "keyword_substitution"):
        task = make_task(name)
        a = task.build(backend(), 1024, 0.5, seed=1)
        assert task.build(backend(), 1024, 0.5, seed=1).to_json() == a.to_json()
        assert task.build(backend(), 1024, 0.5, seed=2).question != a.question
        c = task.build(backend(), 2048, 0.5, seed=1)
        assert (c.question, c.answers) == (a.question, a.answers)


def test_contains_only_scoring():
    answers = ["4821337", FORBIDDEN + "4821373", FORBIDDEN + "4812337"]
    # Right: the true value alone.
    assert score("contains_only", " 4821337.", answers) == 1.0
    # Partly right: the true value together with a false one earns nothing; so does a false one alone.
    assert score_with_details("contains_only", " 4821337 (or 4821373)", answers) == (
        0.0,
        {"found": 1.0, "forbidden": 1.0},
    )
    assert score("contains_only", " 4812337", answers) == 0.0
    assert score("contains_only", " no idea", answers) == 0.0
    # With two gold strings the share found counts, as in contains_all.
    assert score("contains_only", "alpha", ["alpha", "beta", FORBIDDEN + "gamma"]) == 0.5
    assert score("contains_only", "ALPHA beta", ["alpha", "beta", FORBIDDEN + "gamma"]) == 1.0
    assert score("contains_only", "anything", [FORBIDDEN + "x"]) == 0.0


def test_scoring_real_samples():
    sample = make_task("keyword_substitution").build(backend(), 1024, 0.5, seed=3)
    gold, bad = split_answers(sample.answers)
    assert score("contains_only", f" {gold[0]}.", sample.answers) == 1.0
    assert score("contains_only", f" {bad[0]}.", sample.answers) == 0.0


def test_the_plane_and_registration():
    confusing, substitution = make_task("confusing_facts"), make_task("keyword_substitution")
    assert (confusing.diffusion, confusing.scope) == (0.8, 0.1)
    assert (substitution.diffusion, substitution.scope) == (0.9, 0.05)
    assert confusing.metric == substitution.metric == "contains_only"
    assert confusing.uses_depth and substitution.uses_depth


@pytest.mark.parametrize(
    "spec,message",
    [
        ("confusing_facts(distractors=-1)", "distractors=-1"),
        ("confusing_facts(distractors=12)", "distractors=12"),
        ("confusing_facts(haystack=hay)", "haystack"),
        ("keyword_substitution(distractors=-2)", "distractors=-2"),
        ("keyword_substitution(distractors=21)", "distractors=21"),
    ],
)
def test_bad_parameters_name_the_parameter(spec, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        make_task(spec).check(backend(), 1024)


def test_too_short_a_length_is_a_usage_error():
    with pytest.raises(UsageError, match="length too short"):
        make_task("keyword_substitution(distractors=20)").build(backend(), 300, 0.5, seed=0)

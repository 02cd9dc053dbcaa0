"""Distraction tasks: solvers that skip false facts and map synonyms, forbidden values and contains_only."""

from __future__ import annotations

import json
import re

import pytest
from conftest import shared_tiny_backend as backend

from longscope.core import Sample, Turn, UsageError
from longscope.report.load import _samples
from longscope.scoring import score, score_turn, score_with_details
from longscope.store import RunStore
from longscope.tasks import cached_sample, make_task
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


@pytest.mark.parametrize("distractors", [0, 1, 3, 11])
def test_confusing_facts_solver_keeps_only_the_true_fact(distractors):
    task = make_task(f"confusing_facts(distractors={distractors})")
    for seed in range(3):
        sample = task.build(backend(), 2048, 0.4, seed=seed)
        gold, bad = list(sample.answers), list(sample.turns[0].forbidden)
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
        gold, bad = list(sample.answers), list(sample.turns[0].forbidden)
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


def test_contains_only_scoring():
    right, wrong = ("4821337",), ("4821373", "4812337")
    # Right: the true value alone.
    assert score("contains_only", " 4821337.", right, forbidden=wrong) == 1.0
    # Partly right: the true value together with a false one earns nothing; so does a false one alone.
    assert score_with_details("contains_only", " 4821337 (or 4821373)", right, forbidden=wrong) == (
        0.0,
        {"found": 1.0, "forbidden": 1.0},
    )
    assert score("contains_only", " 4812337", right, forbidden=wrong) == 0.0
    assert score("contains_only", " no idea", right, forbidden=wrong) == 0.0
    # With two gold strings the share found counts, as in contains_all.
    assert score("contains_only", "alpha", ["alpha", "beta"], forbidden=["gamma"]) == 0.5
    assert score("contains_only", "ALPHA beta", ["alpha", "beta"], forbidden=["gamma"]) == 1.0
    assert score("contains_only", "alpha beta gamma", ["alpha", "beta"], forbidden=["gamma"]) == 0.0
    assert score("contains_only", "anything", [], forbidden=["x"]) == 0.0


def test_forbidden_values_reach_only_a_scorer_that_uses_them():
    turn = Turn(question="?", answers=("4821337",), forbidden=("4821373",))
    assert score_turn("contains_only", " 4821337", turn, {}) == (1.0, {"found": 1.0, "forbidden": 0.0})
    assert score_turn("contains_only", " 4821337 or 4821373", turn, {})[0] == 0.0
    # A scorer without them would score the false value as no worse than any other text: refused, not dropped.
    with pytest.raises(ValueError, match="takes no forbidden values"):
        score_turn("contains_all", " 4821337", turn, {})
    assert score_turn("contains_all", " 4821337", Turn(question="?", answers=("4821337",)), {})[0] == 1.0


def test_scoring_real_samples():
    for name in ("confusing_facts", "keyword_substitution"):
        sample = make_task(name).build(backend(), 1024, 0.5, seed=3)
        turn = sample.turns[0]
        assert len(turn.answers) == 1 and len(turn.forbidden) == 3
        assert not set(turn.answers) & set(turn.forbidden)
        assert score_turn("contains_only", f" {turn.answers[0]}.", turn, sample.metadata)[0] == 1.0
        assert score_turn("contains_only", f" {turn.forbidden[0]}.", turn, sample.metadata)[0] == 0.0


def _old_form(sample: Sample) -> str:
    """The sample as versions before ``Turn.forbidden`` wrote it: false values among the answers, marked."""
    raw = json.loads(sample.to_json())
    for turn in raw["turns"]:
        turn["answers"] += ["!forbidden:" + value for value in turn.pop("forbidden")]
    return json.dumps(raw)


def test_a_sample_saved_in_the_old_form_reads_back_with_the_same_meaning(isolated_cache):
    task = make_task("confusing_facts(distractors=2)")
    sample = cached_sample(task, backend(), 1024, 0.5, 4)
    (path,) = isolated_cache.rglob("*.json")
    path.write_text(_old_form(sample), encoding="utf-8")
    again = cached_sample(task, backend(), 1024, 0.5, 4)
    assert again == sample and again.turns[0].forbidden == sample.turns[0].forbidden != ()
    assert again.to_json() == sample.to_json()


def test_a_report_of_an_old_run_shows_only_the_gold_answers(tmp_path):
    sample = make_task("keyword_substitution").build(backend(), 1024, 0.5, seed=1)
    store = RunStore.open(tmp_path, create=True)
    with store.connection:
        store.connection.execute(
            "INSERT INTO samples VALUES (?, ?, ?)", (sample.id, sample.task, _old_form(sample))
        )
    try:
        _, answers = _samples(store)
    finally:
        store.close()
    assert answers == {sample.id: [list(sample.answers)]}
    assert Sample.from_json(_old_form(sample)) == sample


def test_the_plane_and_registration():
    confusing, substitution = make_task("confusing_facts"), make_task("keyword_substitution")
    assert (confusing.diffusion, confusing.scope) == (0.8, 0.1)
    assert (substitution.diffusion, substitution.scope) == (0.9, 0.05)
    assert confusing.metric == substitution.metric == "contains_only"
    assert confusing.uses_depth and substitution.uses_depth


def test_too_short_a_length_is_a_usage_error():
    with pytest.raises(UsageError, match="length too short"):
        make_task("keyword_substitution(distractors=20)").build(backend(), 300, 0.5, seed=0)

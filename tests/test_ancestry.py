"""Ancestry: a solver that walks the parent links, name scoring, too short a length, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import shared_tiny_backend as backend

from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.ancestry import relation

LINK = re.compile(r"(\w+) is the parent of (\w+)\.")


def solve(context: str, question: str) -> str:
    """Map each child to its parent, then climb the asked number of generations from the asked person."""
    parent_of = {child: parent for parent, child in LINK.findall(context)}
    k, person = re.search(r"ancestor (\d+) generations? above (\w+),", question).groups()
    for _ in range(int(k)):
        person = parent_of[person]
    return person


@pytest.mark.parametrize(
    "spec,k,chain_length,chains",
    [
        ("ancestry", 3, 6, 3),
        ("ancestry(k=1,chain_length=2,distractor_chains=0)", 1, 2, 1),
        ("ancestry(k=7,chain_length=8,distractor_chains=4,haystack=noise)", 7, 8, 5),
    ],
)
def test_solver_walks_the_links_to_the_gold_name(spec, k, chain_length, chains):
    task = make_task(spec)
    for seed in range(3):
        sample = task.build(backend(), 4096, None, seed=seed)
        assert (solve(sample.context, sample.question),) == sample.answers
        links = LINK.findall(sample.context)
        assert len(links) == (chain_length - 1) * chains
        names = {name for link in links for name in link}
        assert len(names) == chain_length * chains
        # No name is inside another, which is what lets a containment scorer judge names.
        assert not any(a != b and a.lower() in b.lower() for a in names for b in names)
        assert sample.metadata["k"] == k and sample.metadata["chain_length"] == chain_length
        assert sample.metadata["distractor_chains"] == chains - 1


def test_links_are_scattered_through_the_context():
    sample = make_task("ancestry(distractor_chains=4)").build(backend(), 4096, None, seed=0)
    depths = sample.metadata["needle_depths"]
    assert len(depths) == 25 and min(depths) < 0.2 and max(depths) > 0.8


def test_names_are_scored_by_containment():
    sample = make_task("ancestry").build(backend(), 1024, None, seed=0)
    gold = sample.answers[0]
    others = {n for link in LINK.findall(sample.context) for n in link} - {gold}
    wrong = sorted(others)[0]
    assert score("contains_any", f" {gold}.", sample.answers) == 1.0
    assert score("contains_any", f" {gold.lower()}, I believe", sample.answers) == 1.0
    # Partly right: the right person among others still counts (contains_any is lenient by design).
    assert score("contains_any", f" {wrong} or {gold}", sample.answers) == 1.0
    assert score("contains_any", f" {wrong}.", sample.answers) == 0.0


def test_relation_words_and_the_plane():
    assert [relation(k) for k in (1, 2, 3, 4, 5)] == [
        "parent",
        "grandparent",
        "great-grandparent",
        "great-great-grandparent",
        "3-times great-grandparent",
    ]
    task = make_task("ancestry")
    assert (task.diffusion, task.scope) == (0.4, 0.2)
    assert make_task("ancestry(k=5)").scope > task.scope
    assert task.breakdowns == ("k",) and not task.uses_depth and task.metric == "contains_any"


def test_too_short_a_length_is_a_usage_error():
    with pytest.raises(UsageError, match="length too short"):
        make_task("ancestry(chain_length=60,distractor_chains=4)").build(backend(), 1024, None, seed=0)

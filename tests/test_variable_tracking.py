"""Variable tracking: a left-to-right reference solver, statement order, scoring, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample
from longscope.scoring import score
from longscope.tasks import TASKS, make_task

STATEMENT = re.compile(r"VAR ([A-Z]{5}) = (?:VAR ([A-Z]{5})|(\d{5}))\.")

SPECS = [
    "variable_tracking",
    "variable_tracking(haystack=essay)",
    "variable_tracking(chains=3,hops=2)",
    "variable_tracking(haystack=essay,chains=2,hops=7)",
]


def solve(sample: Sample) -> list[str]:
    """A reference solver: read the statements left to right, resolving each copy from what came before."""
    bound: dict[str, str] = {}
    for name, source, number in STATEMENT.findall(sample.context):
        assert name not in bound  # every variable is assigned once
        if source:
            assert source in bound  # the statement it copies came earlier: solvable reading left to right
            bound[name] = bound[source]
        else:
            bound[name] = number
    value = re.search(r"the value (\d{5})", sample.question).group(1)
    return [name for name, held in bound.items() if held == value]


@pytest.mark.parametrize("spec", SPECS)
def test_reference_solver_recovers_the_gold_names(spec):
    backend = tiny_backend()
    task = make_task(spec)
    for seed in (0, 1, 2):
        for length in (1024, 4096):
            sample = task.build(backend, length, None, seed=seed)
            assert solve(sample) == list(sample.answers)  # in chain order, too
            assert len(sample.answers) == task.hops + 1
            assert len(STATEMENT.findall(sample.context)) == task.chains * (task.hops + 1)
            assert all(re.fullmatch(r"[A-Z]{5}", name) for name in sample.answers)


def test_statements_are_spread_in_order_through_the_context():
    backend = tiny_backend()
    sample = make_task("variable_tracking(hops=5)").build(backend, 4096, None, seed=6)
    depths = sample.metadata["needle_depths"]
    assert depths == sorted(depths) and depths[-1] - depths[0] > 0.2


def test_metadata_breakdowns_and_the_plane():
    backend = tiny_backend()
    sample = make_task("variable_tracking(chains=2,hops=3)").build(backend, 2048, None, seed=0)
    assert (sample.metadata["hops"], sample.metadata["chains"]) == (3, 2)
    assert TASKS.get("variable_tracking").breakdowns == ("hops", "chains")
    base = make_task("variable_tracking")
    assert base.diffusion == 0.3 and base.scope == 0.25
    assert make_task("variable_tracking(chains=3)").diffusion > base.diffusion
    assert make_task("variable_tracking(haystack=essay)").diffusion > base.diffusion
    assert make_task("variable_tracking(hops=8)").scope > base.scope
    assert base.metric == "contains_all" and not base.uses_depth


def test_scoring_counts_the_share_of_names_found():
    sample = make_task("variable_tracking(hops=3)").build(tiny_backend(), 1024, None, seed=2)
    a, b, c, d = sample.answers
    assert score("contains_all", f" {a}, {b}, {c}, {d}", sample.answers) == 1.0
    assert score("contains_all", f" {a.lower()} and {c}", sample.answers) == 0.5
    assert score("contains_all", f" {d}", sample.answers) == 0.25
    assert score("contains_all", " none of them", sample.answers) == 0.0

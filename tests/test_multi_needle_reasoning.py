"""Multi-needle reasoning: a solver that combines the asked needles, needle depth, exact_number, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import shared_tiny_backend as backend

from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task

NEEDLE = re.compile(r"The secret number for (\S+) is (\d+)\.")


def solve(context: str, question: str) -> str:
    """Read the needles into a dict, pick the asked keys from the question and apply the asked operation."""
    values = {key: int(value) for key, value in NEEDLE.findall(context)}
    keys = re.split(
        r", | and ", re.search(r"secret numbers for (.+?)(?: from the largest)?\?", question).group(1)
    )
    asked = [values[key] for key in keys]
    if question.startswith("What is the sum"):
        return str(sum(asked))
    if question.startswith("What is the largest"):
        return str(max(asked))
    assert "subtract the smallest" in question
    return str(max(asked) - min(asked))


@pytest.mark.parametrize("operation", ["sum", "max", "difference"])
@pytest.mark.parametrize("needles,distractors", [(2, 0), (3, 2), (5, 4)])
def test_solver_recovers_the_gold_number(operation, needles, distractors):
    task = make_task(
        f"multi_needle_reasoning(operation={operation},needles={needles},distractors={distractors})"
    )
    for seed in (0, 1):
        sample = task.build(backend(), 2048, 0.7, seed=seed)
        assert (solve(sample.context, sample.question),) == sample.answers
        assert len(NEEDLE.findall(sample.context)) == needles + distractors
        assert sample.metadata["needles"] == needles and sample.metadata["operation"] == operation
        assert sample.metadata["distractors"] == distractors


def test_first_needle_sits_at_the_depth():
    sample = make_task("multi_needle_reasoning").build(backend(), 4096, 0.25, seed=3)
    first_key = re.search(r"secret numbers for (\S+) and", sample.question).group(1)
    at = sample.context.index(f"The secret number for {first_key} is")
    assert abs(at / len(sample.context) - 0.25) < 0.05


def test_exact_number_scoring():
    # Right, with a thousands separator and trailing words; the first number is the one that counts.
    assert score("exact_number", " 4,821.", ["4821"]) == 1.0
    assert score("exact_number", " 4821 (4000 + 821)", ["4821"]) == 1.0
    # Partly right is still wrong: off by one, or the right number only after a wrong one.
    assert score("exact_number", " 4822", ["4821"]) == 0.0
    assert score("exact_number", " 4000 + 821 = 4821", ["4821"]) == 0.0
    # Wrong or missing.
    assert score("exact_number", " I cannot tell.", ["4821"]) == 0.0
    # A leading minus counts; a hyphen inside a word does not.
    assert score("exact_number", " -12", ["-12"]) == 1.0
    assert score("exact_number", " -12", ["12"]) == 0.0
    assert score("exact_number", " brave-otter-5", ["5"]) == 1.0
    # Integer gold is exact (4821.0 is the same number); decimal gold allows a relative 1e-2.
    assert score("exact_number", " 4821.0", ["4821"]) == 1.0
    assert score("exact_number", " 4821.4", ["4821"]) == 0.0
    assert score("exact_number", " 3.14", ["3.1416"]) == 1.0
    assert score("exact_number", " 3.0", ["3.1416"]) == 0.0


def test_metadata_and_the_plane():
    task = make_task("multi_needle_reasoning")
    assert (task.diffusion, task.scope) == (0.3, 0.2)
    assert make_task("multi_needle_reasoning(needles=5)").scope == 0.35
    assert make_task("multi_needle_reasoning(distractors=2)").diffusion == 0.5
    assert task.breakdowns == ("needles", "operation")


def test_too_short_a_length_is_a_usage_error():
    with pytest.raises(UsageError, match="length too short"):
        make_task("multi_needle_reasoning(needles=5,distractors=20)").build(backend(), 200, 0.5, seed=0)

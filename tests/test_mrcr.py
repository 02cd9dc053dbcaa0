"""Multi-round co-reference: a solver that counts the repeats, MRCR's grade by hand, the filler's limits."""

from __future__ import annotations

import functools
import re
from difflib import SequenceMatcher

import pytest
from conftest import tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.scoring import score_with_details
from longscope.tasks import make_task
from longscope.tasks.mrcr import Mrcr, ordinal

EXCHANGE = re.compile(r"User: (write an? .+?)\nAssistant: (.*?)(?=\n\nUser: |$)", re.DOTALL)
ASK = re.compile(r"Prepend (\w+) to the (\d+)\w\w \(1 indexed\) (.+?)\. Do not")


@functools.cache
def backend(style: str = "bytelevel") -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer("chatml", style), name=f"tiny-{style}")


def solve(context: str, question: str) -> str:
    """The prefix, then the reply to the k-th request that reads exactly as the question's."""
    prefix, k, what = ASK.search(question).groups()
    replies = [reply for asked, reply in EXCHANGE.findall(context) if asked == f"write a {what}"]
    return prefix + replies[int(k) - 1].strip()


@pytest.mark.parametrize("spec", ["mrcr", "mrcr(rounds=4,decoys=3)", "mrcr(rounds=8,decoys=0)"])
def test_the_solver_recovers_the_gold_reply_from_the_context(spec):
    task = make_task(spec)
    for seed in range(3):
        sample = task.build(backend(), 3072, None, seed)
        assert (solve(sample.context, sample.question),) == sample.answers
        meta = sample.metadata
        # The asked request is made exactly `rounds` times; the filler never makes it.
        request = "User: write a " + ASK.search(sample.question).group(3) + "\n"
        assert sample.context.count(request) == task.rounds == meta["rounds"]
        assert 1 <= meta["occurrence"] <= task.rounds and len(sample.evidence) == meta["occurrence"]
        assert sample.answers[0].startswith(meta["random_prefix"]) and len(meta["random_prefix"]) == 10


def test_occurrences_vary_with_the_seed_and_lengths_hold_on_metaspace():
    task = make_task("mrcr(rounds=4)")
    seen = {task.build(backend(), 2048, None, seed).metadata["occurrence"] for seed in range(8)}
    assert len(seen) >= 2
    assert task.build(backend("metaspace"), 2600, None, 1).metadata["realised_tokens"] == 2600


def grade(prediction: str, gold: str, prefix: str) -> tuple[float, dict]:
    return score_with_details("mrcr_similarity", prediction, [gold], {"random_prefix": prefix})


def test_mrcr_grade_by_hand():
    gold = "aB3xY9qZ0kHello world"
    prefix = "aB3xY9qZ0k"
    assert grade("aB3xY9qZ0kHello world", gold, prefix) == (1.0, {"prefixed": 1.0})
    # Without the prefix nothing counts, however close the rest is.
    assert grade("Hello world", gold, prefix) == (0.0, {"prefixed": 0.0})
    assert grade("aB3xY9qZ0Hello world", gold, prefix)[0] == 0.0
    # "Hello" against "Hello world": 2 * 5 matches / (5 + 11) characters = 0.625.
    assert grade("aB3xY9qZ0kHello", gold, prefix)[0] == pytest.approx(0.625)
    # "Hello there" against "Hello world": matching blocks "Hello " (6) and "r" (1) -> 2 * 7 / 22.
    assert grade("aB3xY9qZ0kHello there", gold, prefix)[0] == pytest.approx(14 / 22)
    assert SequenceMatcher(None, "Hello there", "Hello world").ratio() == pytest.approx(14 / 22)
    # The departure: whitespace around the reply is stripped before the prefix check.
    assert grade("\n  aB3xY9qZ0kHello world \n", gold, prefix)[0] == 1.0


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th",
    ]  # fmt: skip


def test_departures_are_declared_and_the_plane():
    assert len(Mrcr.departures) == 3
    assert (make_task("mrcr").diffusion, make_task("mrcr").scope) == (0.7, 0.2)
    assert make_task("mrcr(rounds=8,decoys=0)").scope == 0.5

"""Span finding: a solver that reads the passages, distinct passage numbers, the id-set scorer by hand."""

from __future__ import annotations

import functools
import re

import pytest
from conftest import tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.scoring import score_with_details
from longscope.tasks import make_task
from longscope.tasks.span_finding import passage_words

PASSAGE = re.compile(r"Passage (\d+): (.*?)(?= Passage \d+: |$)", re.DOTALL)


@functools.cache
def backend(style: str = "bytelevel") -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer("chatml", style), name=f"tiny-{style}")


def solve(context: str, question: str) -> set[str]:
    """The passage numbers that meet the question's condition, from the passages as written."""
    passages = dict(PASSAGE.findall(context))
    word = re.search(r'the word "(\w+)"', question)
    if word:
        return {pid for pid, text in passages.items() if word.group(1) in passage_words(text)}
    many = re.search(r"the (\d+) passages", question)
    count = int(many.group(1)) if many else 1
    ranked = sorted(passages, key=lambda pid: len(passages[pid].split()), reverse=True)
    return set(ranked[:count])


@pytest.mark.parametrize(
    "spec,found",
    [
        ("span_finding", 1),
        ("span_finding(variant=multi,spans=5)", 5),
        ("span_finding(variant=global,spans=3)", 3),
    ],
)
def test_the_solver_recovers_the_gold_ids_from_the_context(spec, found):
    task = make_task(spec)
    for seed in range(3):
        sample = task.build(backend(), 2048, None, seed)
        ids = [pid for pid, _ in PASSAGE.findall(sample.context)]
        assert len(ids) == len(set(ids)) > 20  # every passage has its own number
        assert solve(sample.context, sample.question) == set(sample.answers)
        assert len(sample.answers) == found == sample.metadata["spans"]


def test_the_answer_stays_the_same_as_the_context_grows():
    task = make_task("span_finding(variant=multi,spans=3)")
    short, long = task.build(backend(), 1024, None, 7), task.build(backend(), 6000, None, 7)
    assert short.answers == long.answers and solve(long.context, long.question) == set(long.answers)


def test_evidence_is_the_planted_passages_or_every_unit_for_the_global_variant():
    single = make_task("span_finding").build(backend(), 1024, None, 1)
    assert len(single.evidence) == 1 and single.evidence[0].startswith(f"Passage {single.answers[0]}: ")
    wide = make_task("span_finding(variant=global)").build(backend(), 1024, None, 1)
    assert wide.evidence == () and wide.metadata["evidence"] == "every unit"


def test_exact_lengths_on_metaspace():
    sample = make_task("span_finding(variant=multi)").build(backend("metaspace"), 2500, None, seed=2)
    assert sample.metadata["realised_tokens"] == 2500


def f1(prediction: str, gold: list[str]) -> tuple[float, dict]:
    return score_with_details("id_set_f1", prediction, gold)


def test_the_id_set_scorer_by_hand():
    gold = ["40213", "51120"]
    assert f1(" 40213, 51120", gold) == (1.0, {"precision": 1.0, "recall": 1.0, "exact": 1.0})
    # Order, brackets, repeats and words around the numbers do not matter.
    assert f1(" Passages [51120] and 40213 (and 40213 again).", gold)[0] == 1.0
    # One of two: precision 1, recall 1/2, F1 = 2 * 1 * 0.5 / 1.5 = 2/3.
    score, details = f1(" 40213", gold)
    assert score == pytest.approx(2 / 3) and details == {"precision": 1.0, "recall": 0.5, "exact": 0.0}
    # One right and one wrong: precision 1/2, recall 1/2, F1 1/2.
    assert f1(" 40213, 99999", gold)[0] == pytest.approx(0.5)
    # Three named, two right: precision 2/3, recall 1, F1 = 2 * (2/3) / (5/3) = 0.8.
    assert f1(" 40213 51120 12345", gold)[0] == pytest.approx(0.8)
    # Digits inside a word are no id; nothing right is 0.
    assert f1(" P40213 and 40213x", gold)[0] == 0.0
    assert f1(" I cannot tell.", gold) == (0.0, {"precision": 0.0, "recall": 0.0, "exact": 0.0})
    assert f1(" 007", ["7"])[0] == 1.0


def test_the_plane():
    assert (make_task("span_finding").diffusion, make_task("span_finding").scope) == (0.2, 0.05)
    assert make_task("span_finding(variant=multi,spans=4)").scope == 0.2
    assert make_task("span_finding(variant=global)").scope == 1.0

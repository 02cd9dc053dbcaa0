"""Many-label ICL: a solver that learns the rule from the context, label positions, scoring, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import prompt_tokens, tiny_backend

from longscope.core import Sample, UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.icl import FILLER

# The tiny test tokenizers split made-up words into letters (~40 tokens a demonstration), so few labels fit
# 1024 tokens; real tokenizers fit about twice as many.
SMALL = ["icl_many_labels(labels=12)", "icl_many_labels_depth(labels=12,shots=2)"]
DEMO = re.compile(r"Input: ([^\n]*?)\. Label: (\w+)")


def solve(sample: Sample) -> str:
    """A reference solver: English words carry nothing, so the made-up words of the test input name the label.

    It also checks the hidden rule holds in the context: every made-up word is only ever shown with one label.
    """
    owner: dict[str, set[str]] = {}
    for words, label in DEMO.findall(sample.context):
        for word in words.split():
            owner.setdefault(word, set()).add(label)
    test = re.search(r"Input: (.*)\.$", sample.question).group(1).split()
    made_up = [word for word in test if word not in FILLER]
    assert made_up, test
    labels = set()
    for word in made_up:
        assert len(owner[word]) == 1, (word, owner[word])  # a feature word belongs to one label only
        labels |= owner[word]
    assert len(labels) == 1
    return labels.pop()


def test_default_fifty_labels_fit_4096_and_every_label_is_shown():
    backend = tiny_backend()
    task = make_task("icl_many_labels")
    task.check(backend, 4096)
    sample = task.build(backend, 4096, None, seed=0)
    assert prompt_tokens(backend, sample) + sample.max_new_tokens == 4096
    labels = {label for _, label in DEMO.findall(sample.context)}
    assert len(labels) == 50 and sample.metadata["labels"] == 50
    # Labels are made-up words of one length: none is a substring of another.
    assert all(a == b or a not in b for a in labels for b in labels)
    assert not labels & set(FILLER)


@pytest.mark.parametrize("spec", SMALL + ["icl_many_labels(labels=30)"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reference_solver_recovers_the_gold_label(spec, seed):
    sample = make_task(spec).build(tiny_backend(), 4096, 0.3, seed=seed)
    assert (solve(sample),) == sample.answers
    assert sample.metadata["asked_label"] == sample.answers[0]


def test_label_position_metadata_matches_the_context():
    backend = tiny_backend()
    sample = make_task("icl_many_labels(labels=12)").build(backend, 4096, None, seed=1)
    size = len(sample.context)
    where = [m.start() / size for m in DEMO.finditer(sample.context) if m.group(2) == sample.answers[0]]
    meta = sample.metadata
    assert meta["label_demos"] == len(where) >= 2
    assert meta["label_first_depth"] == round(where[0], 4)
    mean = sum(where) / len(where)
    assert meta["label_position"] == ("early" if mean < 1 / 3 else "middle" if mean < 2 / 3 else "late")
    assert set(make_task("icl_many_labels").breakdowns) == {"label_position", "labels"}


@pytest.mark.parametrize("depth,bucket", [(0.0, "early"), (0.5, "middle"), (1.0, "late")])
def test_depth_variant_puts_the_asked_labels_demonstrations_at_the_depth(depth, bucket):
    backend = tiny_backend()
    sample = make_task("icl_many_labels_depth(labels=12,shots=3)").build(backend, 4096, depth, seed=4)
    meta = sample.metadata
    assert meta["label_demos"] == 3  # only the shots: the generated stream never shows the asked label
    assert meta["label_position"] == bucket
    assert abs(meta["label_first_depth"] - max(0.0, min(depth - 0.02, 0.96))) < 0.05
    assert (solve(sample),) == sample.answers


def test_plane_follows_the_parameters():
    assert make_task("icl_many_labels").diffusion == 0.7 and make_task("icl_many_labels").scope == 0.8
    assert make_task("icl_many_labels(labels=100)").diffusion > make_task("icl_many_labels").diffusion
    assert make_task("icl_many_labels_depth(shots=5)").scope > make_task("icl_many_labels_depth").scope
    assert make_task("icl_many_labels_depth").uses_depth and not make_task("icl_many_labels").uses_depth


def test_exact_label_scoring_by_hand():
    gold = ("tavrol",)
    assert score("exact_label", " tavrol", gold) == 1.0
    assert score("exact_label", " Tavrol.\nBecause of the word zimek.", gold) == 1.0
    assert score("exact_label", "Label: tavrol", gold) == 1.0  # a repeated prefix is skipped
    assert score("exact_label", " kesmin", gold) == 0.0  # another label
    assert score("exact_label", " I think tavrol", gold) == 0.0  # the first word is the answer
    assert score("exact_label", "", gold) == 0.0


def test_build_without_check_still_refuses_when_labels_do_not_all_fit():
    with pytest.raises(UsageError, match="labels=50 do not all fit"):
        make_task("icl_many_labels").build(tiny_backend(), 1024, None, seed=0)


@pytest.mark.parametrize("spec", SMALL)
def test_seeds_give_distinct_deterministic_exact_samples(spec):
    backend = tiny_backend()
    task = make_task(spec)
    first, again, other = (task.build(backend, 2048, 0.4, seed=s) for s in (3, 3, 4))
    assert first == again and first.context != other.context
    for sample in (first, other):
        assert prompt_tokens(backend, sample) + sample.max_new_tokens == 2048
    assert task.cache_token() == "block-draws-v2"  # samples cached before the block draws are not served


def test_generated_demonstrations_follow_the_definition():
    # Every demonstration of a sample: three to five distinct filler words with one or two distinct feature
    # words of its own label among them; every label once per cycle.
    sample = make_task("icl_many_labels(labels=12)").build(tiny_backend(), 4096, None, seed=2)
    demos = DEMO.findall(sample.context)
    owner = {}
    for words, label in demos:
        made_up = [w for w in words.split() if w not in FILLER]
        filler = [w for w in words.split() if w in FILLER]
        assert 1 <= len(made_up) <= 2 and len(set(made_up)) == len(made_up), words
        assert 3 <= len(filler) <= 5 and len(set(filler)) == len(filler), words
        for word in made_up:
            assert owner.setdefault(word, label) == label
    whole_cycles = len(demos) // 12
    assert whole_cycles >= 2
    for cycle in range(whole_cycles):
        assert len({label for _, label in demos[12 * cycle : 12 * (cycle + 1)]}) == 12
    assert len({label for _, label in demos[:12]} | set(owner.values())) == 12


def test_block_draws_are_spread_as_inserting_one_feature_word_after_another():
    # One block of 4,096 demonstrations: half have two feature words; three, four and five filler words
    # are equally likely; with two feature words among three filler words, each of the 5 * 4 = 20 ordered
    # pairs of places is equally likely (inserting at 0..3, then at 0..4, reaches each pair once).
    from collections import Counter

    from longscope.tasks.icl import _DemoDraws

    labels = [f"l{j}" for j in range(10)]
    features = {label: (f"{label}a", f"{label}b", f"{label}c") for label in labels}
    draws = _DemoDraws(12345, list(range(10)), features, labels)
    block = draws.block(0)
    assert 0.46 < (block.k == 2).mean() < 0.54
    fillers = (block.grid < len(FILLER)).sum(axis=1)
    assert all(0.30 < (fillers == n).mean() < 0.37 for n in (3, 4, 5))
    places = Counter()
    for r in range(4096):
        if block.k[r] == 2 and fillers[r] == 3:
            row = block.grid[r].tolist()
            places[(row.index(block.feature[r, 0]), row.index(block.feature[r, 1]))] += 1
    assert len(places) == 20 and all(10 <= count <= 60 for count in places.values())
    assert draws.text(5) == "".join(draws.pieces(5))

"""Aggregation tasks: reference solvers that count the context, scoring, the plane."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import tiny_backend

from longscope.core import Sample
from longscope.scoring import score
from longscope.tasks import make_task

NAMES = ["common_words", "frequent_words", "count_occurrences"]
TOKENIZERS = [("chatml", "bytelevel"), ("inst", "metaspace")]


# ---------------------------------------------------------------------------------------------------------
# Reference solvers: only the context and the question


def solve_common_words(sample: Sample) -> tuple[set[str], Counter]:
    top = int(re.search(r"Which (\d+) words", sample.question).group(1))
    # Items are "N. word" lines; the filler that may open the context can share the first item's line.
    items = re.findall(r"(?:^|\s)(\d+)\. ([a-z]+)(?=\n|$)", sample.context)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1))
    words = [w for _, w in items]
    counts = Counter(words)
    ranked = counts.most_common()
    assert ranked[top - 1][1] > ranked[top][1], "the top words must lead clearly"
    return {w for w, _ in ranked[:top]}, counts


def solve_frequent_words(sample: Sample) -> set[str]:
    top = int(re.search(r"Which (\d+) coded words", sample.question).group(1))
    # The coded text has no periods; the few filler words that may open the context end with one.
    coded = sample.context.rsplit(".", 1)[-1]
    assert re.fullmatch(r"[a-z\s]+", coded)
    ranked = Counter(coded.split()).most_common()
    assert ranked[top - 1][1] > ranked[top][1], "the gold set must be unambiguous"
    return {w for w, _ in ranked[:top]}


def solve_count(sample: Sample) -> int:
    target = re.search(r'the word "([a-z]+)"', sample.question).group(1)
    return len(re.findall(rf"\b{target}\b", sample.context))


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_common_words_gold_is_the_most_common_words_of_the_list(template, style, seed):
    backend = tiny_backend(template, style)
    task = make_task("common_words")
    golds = []
    for length in (1024, 4096):
        sample = task.build(backend, length, None, seed)
        top, counts = solve_common_words(sample)
        assert top == set(sample.answers) and len(sample.answers) == 10
        # The common words lead every rare word, which appears at most rare_count times.
        assert min(counts[w] for w in top) > 3 >= max(c for w, c in counts.items() if w not in top)
        assert sample.metadata["common_occurrences"] == min(counts[w] for w in top)
        golds.append(top)
    # However many rounds fit, the same words are the common ones.
    assert golds[0] == golds[1]


def test_common_words_counts_follow_the_parameters():
    backend = tiny_backend()
    sample = make_task("common_words(top=4,common_count=12,rare_count=2)").build(backend, 8192, None, 0)
    top, counts = solve_common_words(sample)
    assert len(top) == 4 and top == set(sample.answers)
    # About common_count rounds fit (sized from an estimate); rare words never exceed rare_count.
    assert all(11 <= counts[w] <= 14 for w in top)
    assert max(c for w, c in counts.items() if w not in top) == 2


@pytest.mark.parametrize("template,style", TOKENIZERS)
def test_common_words_samples_are_fixed_by_the_seed_and_differ_between_seeds(template, style):
    backend = tiny_backend(template, style)
    task = make_task("common_words(top=4,common_count=8,rare_count=2)")
    first = [task.build(backend, 2048, None, seed) for seed in range(6)]
    again = [task.build(backend, 2048, None, seed) for seed in range(6)]
    assert [s.to_json() for s in first] == [s.to_json() for s in again]
    # Seeds start their run of the shared word pool at different places: other words, other orders.
    assert len({s.context for s in first}) == 6
    assert len({frozenset(s.answers) for s in first}) == 6
    # Samples built under the first definition (words from anywhere in the space) are keyed apart.
    assert task.cache_token() == "word-pool-v2"


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_frequent_words_gold_is_counted_on_the_fitted_text(template, style, seed):
    backend = tiny_backend(template, style)
    for spec in ("frequent_words", "frequent_words(alpha=1.2,top=5)"):
        sample = make_task(spec).build(backend, 2048, None, seed)
        assert solve_frequent_words(sample) == set(sample.answers)
        assert len(sample.answers) == make_task(spec).top


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_count_occurrences_gold_is_the_number_of_whole_word_matches(template, style, seed):
    backend = tiny_backend(template, style)
    counts = set()
    for length in (1024, 4096):
        sample = make_task("count_occurrences").build(backend, length, None, seed)
        assert solve_count(sample) == int(sample.answers[0]) == sample.metadata["count"]
        assert 5 <= int(sample.answers[0]) <= 20
        counts.add(sample.answers[0])
    assert len(counts) == 1  # the count is drawn from the seed, not the length


# ---------------------------------------------------------------------------------------------------------
# Scoring


def test_scoring_right_partly_right_and_wrong():
    backend = tiny_backend()
    common = make_task("common_words").build(backend, 2048, None, 0)
    words = list(common.answers)
    assert score("contains_all", " " + ", ".join(words), common.answers) == 1.0
    # Four of the ten common words, plus a made-up one: 4/10.
    assert score("contains_all", " " + ", ".join(words[:4] + ["zzzzzz"]), common.answers) == 0.4
    assert score("contains_all", " I could not tell.", common.answers) == 0.0

    frequent = make_task("frequent_words").build(backend, 2048, None, 0)
    first, second, _ = frequent.answers
    assert score("contains_all", f" {first}, {second}, zzzz", frequent.answers) == pytest.approx(2 / 3)

    count = make_task("count_occurrences").build(backend, 2048, None, 0)
    n = int(count.answers[0])
    assert score("exact_number", f" {n} times.", count.answers) == 1.0
    assert score("exact_number", f" {n + 1} times.", count.answers) == 0.0  # off by one is wrong
    assert score("exact_number", " many times", count.answers) == 0.0


# ---------------------------------------------------------------------------------------------------------
# Parameters


def test_the_plane():
    assert make_task("common_words").scope >= 0.9 and make_task("frequent_words").scope >= 0.9
    assert make_task("count_occurrences").scope == pytest.approx(0.9)
    assert make_task("frequent_words(alpha=1.0)").diffusion > make_task("frequent_words").diffusion
    assert make_task("common_words").metric == "contains_all"
    assert make_task("count_occurrences").metric == "exact_number"

"""Ordering and selection: solvers for reorder and best_of_n, the order and choice scorers, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample
from longscope.haystack import corpus, split_sentences
from longscope.scoring import score, score_with_details
from longscope.tasks import make_task

TOKENIZERS = [("chatml", "bytelevel"), ("inst", "metaspace"), ("llama3", "bytelevel")]
NOISE_WORDS = set(re.findall(r"[a-z]+", "".join(corpus("noise").sentences).lower()))


# ---------------------------------------------------------------------------------------------------------
# Reference solvers


def solve_reorder(sample: Sample) -> list[str]:
    """Find each segment's first and last sentence in the (public) essay corpus and chain the segments: a
    segment's successor is the one that starts with the sentence after its last one."""
    sentences = corpus("essay").sentences
    where = {s.strip(): i for i, s in enumerate(sentences)}
    marks = list(re.finditer(r"\[([A-Z])\] ", sample.context))
    ends: dict[str, tuple[int, int]] = {}
    for mark, following in zip(marks, marks[1:] + [None], strict=True):
        text = sample.context[mark.end() : following.start() if following else len(sample.context)]
        units = [u.strip() for u in split_sentences(text.strip())]
        ends[mark.group(1)] = (where[units[0]], where[units[-1]])
    size = len(sentences)

    def gap(before: str, after: str) -> int:
        # 0 when ``after`` starts with the sentence that follows ``before``'s last one (a little more where the
        # fitter trimmed the last shown segment), large otherwise.
        return (ends[after][0] - ends[before][1] - 1) % size

    # The first segment follows no other; each next one is the nearest continuation of the one before.
    first = max(ends, key=lambda label: min(gap(x, label) for x in ends if x != label))
    chain = [first]
    while len(chain) < len(ends):
        chain.append(min((x for x in ends if x not in chain), key=lambda x: gap(chain[-1], x)))
    return chain


FACTS = r"born in (\d{4}), lives in ([A-Z][a-z]+) and likes the colour ([a-z]+)\."
RECORD = re.compile(r"([A-Z][a-z]+ [A-Z][a-z]+) was " + FACTS)
OPTION = re.compile(r"^\[(C\d+)\] " + FACTS + "$", flags=re.MULTILINE)


def solve_best_of_n(sample: Sample) -> str:
    """Read every record, find the asked person's, and return the label of the statement that repeats it."""
    records: dict[str, list[tuple[str, ...]]] = {}
    for name, *facts in RECORD.findall(sample.context):
        records.setdefault(name, []).append(tuple(facts))
    asked = re.search(r'complete the sentence "([A-Z][a-z]+ [A-Z][a-z]+) was', sample.question).group(1)
    assert len(records[asked]) == 1, "the asked person has exactly one record"
    truth = records[asked][0]
    options = [(label, tuple(facts)) for label, *facts in OPTION.findall(sample.question)]
    right = [label for label, facts in options if facts == truth]
    assert len(right) == 1
    # Every value of every statement is in the context, bound to the person or to a look-alike with the same
    # first name, and some wrong statements are exactly true of a look-alike.
    first_name = asked.split()[0]
    lookalikes = [f for other, fs in records.items() if other.split()[0] == first_name for f in fs]
    for _, facts in options:
        assert all(any(f[i] == facts[i] for f in lookalikes) for i in range(3))
    assert sum(facts in lookalikes for _, facts in options) == len(lookalikes) >= 2
    return right[0]


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reorder_solver_recovers_the_order(template, style, seed):
    backend = tiny_backend(template, style)
    for spec, length in (("reorder", 2048), ("reorder(segments=3)", 1024), ("reorder(segments=10)", 4096)):
        sample = make_task(spec).build(backend, length, None, seed)
        assert solve_reorder(sample) == list(sample.answers)
        assert len(sample.answers) == len(set(sample.answers)) == sample.metadata["segments"]
        # The context holds only the segments and, before the first label, plain filler that makes up the last
        # tokens: less than one more sentence would cost (plus any sentences the fitter trimmed to be exact).
        assert len(re.findall(r"\[[A-Z]\] ", sample.context)) == sample.metadata["segments"]
        filler = sample.context.split("[", 1)[0]
        words = re.findall(r"[a-z]+", filler.lower())  # the first may be the end of a word cut mid-way
        assert set(words[1:]) <= NOISE_WORDS and all(
            any(w.endswith(x) for w in NOISE_WORDS) for x in words[:1]
        )
        assert len(backend.encode(filler)) < 80 * (1 + sample.metadata["dropped_sentences"])


@pytest.mark.parametrize("seed", [0, 1])
def test_reorder_past_the_end_of_the_corpus_keeps_each_seam_unique(seed):
    # 40k tokens of the tiny tokenizer is more than the whole essay corpus: the text repeats, and segment
    # starts are kept apart so that the order is still determined by the seams.
    backend = tiny_backend()
    sample = make_task("reorder").build(backend, 40_000, None, seed)
    assert sample.metadata["sentences"] > len(corpus("essay").sentences)
    assert solve_reorder(sample) == list(sample.answers)


def test_reorder_segments_are_consecutive_text_in_about_equal_parts():
    backend = tiny_backend()
    sample = make_task("reorder").build(backend, 4096, None, 7)
    parts = re.split(r"\[[A-Z]\] ", sample.context)[1:]
    sizes = [len(backend.tokenizer(p)["input_ids"]) for p in parts]
    assert max(sizes) < 2 * min(sizes)
    # Read in the gold order, the segments give back consecutive corpus sentences.
    by_label = dict(zip(re.findall(r"\[([A-Z])\] ", sample.context), parts, strict=True))
    text = " ".join(by_label[label].strip() for label in sample.answers)
    where = {s.strip(): i for i, s in enumerate(corpus("essay").sentences)}
    indices = [where[u.strip()] for u in split_sentences(text)]
    assert indices == list(range(indices[0], indices[0] + len(indices)))


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_best_of_n_solver_finds_the_true_statement(template, style, seed):
    backend = tiny_backend(template, style)
    for spec, length in (("best_of_n", 4096), ("best_of_n(candidates=5)", 1024)):
        sample = make_task(spec).build(backend, length, None, seed)
        assert solve_best_of_n(sample) == sample.answers[0]
        assert (
            len(re.findall(r"^\[C\d+\] ", sample.question, flags=re.MULTILINE)) == make_task(spec).candidates
        )


# ---------------------------------------------------------------------------------------------------------
# Scoring


def test_order_scorer_exact_order_and_kendall_tau():
    gold = ["K", "B", "W", "E"]
    assert score_with_details("order", " [K] [B] [W] [E]", gold) == (
        1.0,
        {"kendall_tau": 1.0, "tau_score": 1.0},
    )
    # One adjacent swap: 5 of 6 pairs agree, tau = (5 - 1) / 6.
    main, sub = score_with_details("order", " [B] [K] [W] [E]", gold)
    assert main == 0.0
    assert sub["kendall_tau"] == pytest.approx(2 / 3) and sub["tau_score"] == pytest.approx(5 / 6)
    # Reversed: every pair disagrees.
    assert score_with_details("order", "E, W, B, K", gold) == (0.0, {"kendall_tau": -1.0, "tau_score": 0.0})
    # Missing labels go last in gold order: K W (B E) -> only (B, W) disagrees; not exact.
    main, sub = score_with_details("order", " [K] then [W]", gold)
    assert main == 0.0 and sub["kendall_tau"] == pytest.approx(2 / 3)
    # Prose capitals are not labels; repeats count once; nothing found scores tau 1 for gold order filled in
    # but the exact score stays 0.
    assert score("order", " A Kite: K B W E, then K again", gold) == 1.0
    assert score_with_details("order", " I cannot tell.", gold)[0] == 0.0


def test_choice_scorer_takes_the_first_label():
    assert score("choice", " [C07]", ["C07"]) == 1.0
    assert score("choice", " C7.", ["C07"]) == 1.0
    assert score("choice", " c07 is true", ["C07"]) == 1.0
    assert score("choice", " C12, or perhaps C07", ["C07"]) == 0.0
    assert score("choice", " C17", ["C07"]) == 0.0
    assert score("choice", " I am not sure.", ["C07"]) == 0.0


def test_scoring_a_built_sample():
    backend = tiny_backend()
    sample = make_task("reorder(segments=4)").build(backend, 2048, None, 1)
    gold = list(sample.answers)
    assert score("order", " " + " ".join(f"[{g}]" for g in gold), gold) == 1.0
    swapped = [gold[1], gold[0], *gold[2:]]
    assert score_with_details("order", " ".join(swapped), gold)[1]["kendall_tau"] == pytest.approx(2 / 3)
    choice = make_task("best_of_n").build(backend, 2048, None, 1)
    assert score("choice", f" [{choice.answers[0]}]", choice.answers) == 1.0
    wrong = "C01" if choice.answers[0] != "C01" else "C02"
    assert score("choice", f" [{wrong}]", choice.answers) == 0.0


# ---------------------------------------------------------------------------------------------------------
# Parameters


def test_the_plane():
    assert make_task("reorder").scope >= 0.9 and 0.3 <= make_task("reorder").diffusion <= 0.5
    assert make_task("best_of_n").diffusion == pytest.approx(0.6) and make_task("best_of_n").scope == 0.3
    assert make_task("best_of_n(candidates=40)").diffusion > make_task("best_of_n").diffusion

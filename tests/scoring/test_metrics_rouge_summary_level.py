"""ROUGE as the `rouge` package computes it (LongBench, LooGLE, LV-Eval): "." sentences, set counts, union LCS;
checked against the package itself."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from longscope.scoring.longbench import DEEPEST_TRACE
from longscope.scoring.rouge_summary_level import (
    PackageError,
    checked_scores,
    lcs_trace,
    lcs_words,
    scores,
    sentences,
)


def test_sentences_are_cut_at_every_full_stop_and_whitespace_is_collapsed():
    assert sentences("the cat  sat. on\nthe mat.") == ["the cat sat", "on the mat"]
    assert sentences("a. .b") == ["a", "", "b"]  # a piece of spaces stays, as an empty sentence
    assert sentences("") == [] and sentences("...") == []


def test_hand_worked_scores_cross_sentences_and_count_distinct_ngrams():
    got = scores("the cat sat. on the mat", "the cat is on the mat")
    # Unigrams as sets: {the, cat, sat, on, mat} against {the, cat, is, on, mat}: 4 shared of 5 each.
    assert got["rouge-1"]["p"] == pytest.approx(0.8) and got["rouge-1"]["r"] == pytest.approx(0.8)
    # Bigrams run across the sentence cut ("sat on"): the, cat / on, the / the, mat are shared, 3 of 5.
    assert got["rouge-2"]["r"] == pytest.approx(0.6)
    # LCS of the reference with "the cat sat" is {the, cat}, with "on the mat" {on, the, mat}: union 4 of 5.
    assert got["rouge-l"]["r"] == pytest.approx(0.8) and got["rouge-l"]["p"] == pytest.approx(0.8)
    assert got["rouge-l"]["f"] == pytest.approx(0.8, abs=1e-6)


def test_repeats_count_once_and_case_is_kept():
    assert scores("a a a", "a")["rouge-1"]["p"] == 1.0
    assert scores("The Cat", "the cat")["rouge-l"]["r"] == 0.0


def test_a_side_without_sentences_gives_none_where_the_package_raises():
    assert scores("", "the cat") is None
    assert scores("the cat", "..") is None


def test_lcs_trace_steps_along_the_evaluated_side_on_a_tie():
    assert lcs_words(["a", "b"], ["b", "a"]) == {"b"}
    assert lcs_words(["x", "a", "y", "b"], ["a", "b"]) == {"a", "b"}


def test_the_trace_counts_the_packages_nested_calls():
    # One call per step back plus the call that meets an empty side. "a" against "a": two calls.
    assert lcs_trace(["a"], ["a"]) == ({"a"}, 2)
    # No word shared: the trace walks the evaluated side to its start, one call per word, plus the last.
    assert lcs_trace(["x"], ["a", "b", "c"]) == (set(), 4)


def test_a_trace_deeper_than_allowed_raises_as_the_package_would():
    with pytest.raises(PackageError, match="RecursionError"):
        checked_scores("a b c d", "x", deepest=4)
    assert checked_scores("a b c", "x", deepest=4)["rouge-l"]["f"] == 0.0
    with pytest.raises(PackageError, match="Hypothesis is empty"):
        checked_scores("...", "x")
    with pytest.raises(PackageError, match="Reference is empty"):
        checked_scores("x", "")


def _texts(rng: random.Random, count: int) -> list[str]:
    words = ["the", "The", "cat", "cat,", "sat", "on", "mat", "a", "A", "dog", "ran", "", "x.y", "..", "\n"]
    texts = ["", ".", "...", " . ", "the cat", "The Cat. the cat", "a a a. a", "  spaced   out  . text "]
    for _ in range(count):
        pieces = [rng.choice(words) for _ in range(rng.randint(1, 14))]
        texts.append(
            rng.choice([" ", "  ", ". ", " "]).join(pieces) if rng.random() < 0.3 else " ".join(pieces)
        )
    return texts


def test_the_port_agrees_with_the_rouge_package():
    """Every metric, p, r and f, to the last bit, and a raise exactly where the package raises."""
    from rouge import Rouge

    package = Rouge()
    rng = random.Random(7)
    texts = _texts(rng, 120)
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(600)]
    pairs += [
        ("the cat sat. on the mat", "the cat is on the mat"),
        ("Staffing fell, visits rose", "staffing fell"),
    ]
    raised = 0
    for hypothesis, reference in pairs:
        try:
            expected = package.get_scores(hypothesis, reference)[0]
        except ValueError:
            raised += 1
            with pytest.raises(PackageError):
                checked_scores(hypothesis, reference)
            continue
        assert checked_scores(hypothesis, reference) == expected, (hypothesis, reference)
    assert 0 < raised < len(pairs)  # both kinds of input were tried


_DEPTH_PROBE = textwrap.dedent(
    """
    import sys
    from rouge import Rouge

    def rouge_score(prediction, ground_truth):  # LongBench's rouge_score, one frame as in its metrics.py
        try:
            return Rouge().get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]
        except RecursionError:
            return -1.0

    def rouge_zh_score(prediction, ground_truth):  # the Chinese path adds this frame
        return rouge_score(prediction, ground_truth)

    def scorer(metric, prediction, ground_truth):  # eval.py's scorer, called from the module level
        return metric(prediction, ground_truth)

    for words in map(int, sys.argv[1:]):
        hypothesis = "zz " + " ".join(f"w{i}" for i in range(words))
        print(scorer(rouge_score, hypothesis, "zz yy") > 0, scorer(rouge_zh_score, hypothesis, "zz yy") > 0)
    """
)


def test_the_recursion_depth_limit_is_the_packages_under_longbenchs_call_stack():
    """Run the package at the depth LongBench's eval.py calls it from (module, scorer, rouge_score), and check
    that ``DEEPEST_TRACE`` sits exactly at the last hypothesis length it survives."""
    # A hypothesis "zz w0 .. w(n-1)" against "zz yy" needs n + 3 nested trace-back calls.
    assert lcs_trace(["zz", "yy"], ["zz"] + [f"w{i}" for i in range(10)])[1] == 13
    english, chinese = DEEPEST_TRACE["en"] - 3, DEEPEST_TRACE["zh"] - 3
    sizes = [english, english + 1, chinese, chinese + 1]
    probe = subprocess.run(
        [sys.executable, "-c", _DEPTH_PROBE, *map(str, sizes)], capture_output=True, text=True, check=True
    )
    survived = [line.split() for line in probe.stdout.splitlines()]
    assert [row[0] for row in survived[:2]] == ["True", "False"]  # English path at its limit and one past
    assert [row[1] for row in survived[2:]] == ["True", "False"]  # Chinese path likewise

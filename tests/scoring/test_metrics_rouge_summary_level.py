"""ROUGE as the `rouge` package computes it (LooGLE, LV-Eval): "." sentences, set counts, union LCS."""

from __future__ import annotations

import pytest

from longscope.scoring.rouge_summary_level import lcs_words, scores, sentences


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

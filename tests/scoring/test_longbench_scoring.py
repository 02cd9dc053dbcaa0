"""LongBench's scoring rules: first-line scoring of few-shot answers, the per-record metric, v2's letter rule."""

from __future__ import annotations

import pytest

from longscope.core import UsageError
from longscope.scoring import score, score_with_details
from longscope.scoring.longbench import extract_v2_choice, first_line

SUMMARY_GOLD = ["Rural clinic staffing fell ten percent as visits rose."]


def test_first_line_skips_leading_newlines_only():
    assert first_line("\n\nCity\nType: Date") == "City"
    assert first_line("  City\nDate") == "  City"
    assert first_line("") == ""


def test_first_line_variants_score_only_the_first_line():
    classes = {"all_classes": ["City", "Date", "Number"]}
    # Two classes named: classification alone splits the credit; only "City" is on the first line.
    assert score("classification", "City\nType: Date", ["City"], classes) == 0.5
    assert score("classification_first_line", "City\nType: Date", ["City"], classes) == 1.0
    # qa_f1 of "lake ossen passage x" against "lake ossen": P = 2/4, R = 1, F1 = 2/3; first line: F1 = 1.
    assert score("qa_f1", "\nLake Ossen\nPassage: x", ["Lake Ossen"]) == pytest.approx(2 / 3)
    assert score("qa_f1_first_line", "\nLake Ossen\nPassage: x", ["Lake Ossen"]) == 1.0
    # The rouge package's ROUGE-L, words split at spaces with case and punctuation kept. First line "Rural
    # clinic staffing fell" (the "." cuts the sentence): 4 distinct words, all in the 9 of the gold, in order:
    # P = 1, R = 4/9, F = 8/13. The whole prediction adds "Dialogue:" and "more": P = 4/6, R = 4/9, F = 8/15.
    prediction = "Rural clinic staffing fell.\nDialogue: more"
    assert score("longbench_rouge_l_first_line", prediction, SUMMARY_GOLD) == pytest.approx(8 / 13)
    assert score("longbench_rouge_l", prediction, SUMMARY_GOLD) == pytest.approx(8 / 15)


def test_per_record_uses_the_metric_the_sample_names():
    meta = {"metric": "count"}
    assert score("per_record", "2 or 3", ["2"], meta) == 0.5
    meta = {"metric": "classification_first_line", "all_classes": ["City", "Date"]}
    assert score("per_record", "City\nDate", ["City"], meta) == 1.0
    with pytest.raises(UsageError, match="metadata 'metric'"):
        score_with_details("per_record", "x", ["x"], {})


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("The correct answer is (C)", "C"),
        ("**The correct answer is (D)**", "D"),
        ("After reading, The correct answer is B.", "B"),
        ("The correct answer is Because of the storm", "B"),  # as v2's own regex reads it
        ("the correct answer is (A)", None),  # the phrase is case-sensitive
        ("B", None),
        ("Answer: B", None),
        ("The correct answer is (E)", None),
    ],
)
def test_v2_extraction_follows_the_benchmark(reply, letter):
    assert extract_v2_choice(reply) == letter


def test_v2_choice_scores_the_extracted_letter():
    assert score("longbench_v2_choice", "The correct answer is (B).", ["B"]) == 1.0
    assert score("longbench_v2_choice", "The correct answer is (A).", ["B"]) == 0.0
    assert score("longbench_v2_choice", "B", ["B"]) == 0.0  # choice_letter would give 1 here
    assert score("choice_letter", "B", ["B"]) == 1.0

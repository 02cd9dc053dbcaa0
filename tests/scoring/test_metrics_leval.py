"""L-Eval's exact-match scores with its answer extraction per task, worked by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score
from longscope.scoring.leval import code_prediction, exam_score, math_answer, option_prediction


def test_exam_score_rules():
    assert exam_score("BD", "BD") == 1.0
    assert exam_score("B", "BD") == 0.25  # a subset of the right letters
    assert exam_score("A", "BD") == 0.0
    assert exam_score("4.0", "4") == 1.0  # read as the same number
    assert exam_score("the topic was tide pools", "Tide Pools") == 1.0  # lower case, spaces dropped, inside
    assert exam_score("The cat", "a cat") == 0.0  # case is kept, so "The" is not an article here


def test_single_answer_choice_reads_the_first_capital_letter():
    assert option_prediction("The answer is C", several=False) == "C"
    assert score("leval_choice", "The answer is C", ["(C) It means that..."]) == 1.0
    assert score("leval_choice", "Based on the text, D", ["D"]) == 0.0  # the "B" of "Based" is read
    assert score("leval_choice", "  ", ["A"]) == 0.0  # an empty reply reads "None"
    assert score("leval_choice", "no letter here", ["A"]) == 1.0  # L-Eval guesses "A" when none is found


def test_multi_answer_choice_gives_a_quarter_for_part_of_the_letters():
    assert score("leval_choice_multi", "BD", ["BD"]) == 1.0
    assert score("leval_choice_multi", "B", ["BD"]) == 0.25
    assert option_prediction("A. foo\nC. bar", several=True) == "AC"
    assert option_prediction("A, C", several=True) == "A"  # "C" at the very end stands before nothing
    assert score("leval_choice_multi", "A, C", ["AC"]) == 0.25
    assert score("leval_choice_multi", "D", ["BC"]) == 0.0


def test_math_reads_the_answer_sentence_or_the_last_number_of_the_first_paragraph():
    assert math_answer("The answer is $1,250.50") == "1250"
    assert math_answer("We get 12 apples\n\nthen 7") == "12"
    assert score("leval_math", "3 + 4 = 7. The answer is 7.", ["7"]) == 1.0
    assert score("leval_math", "so 8 apples", ["The answer is 7\n"]) == 0.0


def test_topic_retrieval_looks_for_the_topic_in_the_reply():
    assert score("leval_exact", "The first topic was tide pools.", ["Tide pools"]) == 1.0
    assert score("leval_exact", "paper kites", ["Tide pools"]) == 0.0


def test_code_takes_the_words_after_the_final_output_with_filler_removed():
    reply = "The code sums the list, so the final output is [6, 15]."
    assert code_prediction(reply, "[6 15]") == " [6 15]."
    assert score("leval_code", reply, ["[6 15]"]) == 1.0
    assert score("leval_code", "It prints 3", ["3"]) == 1.0  # the last words, when no final output is named
    assert score("leval_code", "The result is 4", ["3"]) == 0.0


def test_true_false_reads_the_first_verdict_word():
    assert score("leval_true_false", "False. The planet had no air.", ["False"]) == 1.0
    assert score("leval_true_false", "True", ["True [fact: False]"]) == 1.0  # the gold's fact part is ignored
    assert score("leval_true_false", "I think it is untrue", ["False"]) == 0.0  # "untrue" holds "true"
    assert score("leval_true_false", "Maybe.", ["True"]) == 0.0


@pytest.mark.parametrize("name", ["leval_choice", "leval_choice_multi", "leval_math", "leval_code"])
def test_no_gold_scores_zero(name):
    assert score(name, "A", []) == 0.0

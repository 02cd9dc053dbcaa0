"""InfiniteBench's per-task scores (its compute_scores.py), worked by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score
from longscope.scoring.infinitebench import first_int


def test_passkey_and_number_take_the_first_digit_run_as_written():
    assert first_int("No. 0042, then 7") == "0042"
    assert score("infinitebench_first_int", "The pass key is 71432.", ["71432"]) == 1.0
    assert score("infinitebench_first_int", "Key 00071432", ["71432"]) == 0.0
    assert score("infinitebench_first_int", "71,432", ["71432"]) == 0.0


def test_kv_needs_the_value_as_a_whole_word():
    assert score("infinitebench_kv", 'The value is "a9e1-11ab".', ["a9e1-11ab"]) == 1.0
    assert score("infinitebench_kv", "a9e1-11abX", ["a9e1-11ab"]) == 0.0


def test_dialogue_tries_the_first_gold_only_against_upper_cased_words():
    assert score("infinitebench_dialogue", "Ace.", ["ACE", "ACE ROTHSTEIN"]) == 1.0
    assert score("infinitebench_dialogue", "Ace Rothstein", ["ACE ROTHSTEIN", "ACE"]) == 0.0


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("C. Snowfield", 1.0),
        ("Snowfield", 1.0),  # the reply is a gold
        ("The answer is: C", 1.0),  # the words after "answer is:"
        ("I pick D", 0.0),  # the first word that is a piece of "ABCD" decides
        ("A fine question", 0.0),  # a reply opening with A-D is read by that letter
        ("", 0.0),
    ],
)
def test_choice(reply, want):
    assert score("infinitebench_choice", reply, ["Snowfield", "C"]) == want


def test_code_debug_wants_the_letter_with_a_mark_or_after_an_answer_phrase():
    golds = ["Configer._set_option", "B"]
    assert score("infinitebench_code_debug", "B. Configer._set_option", golds) == 1.0
    assert score("infinitebench_code_debug", "The answer is: B", golds) == 1.0
    assert (
        score("infinitebench_code_debug", "The answer is: repack_carchive", ["repack_carchive", "A"]) == 1.0
    )
    # InfiniteBench deletes "option" from the reply, so a name holding it is only found by its letter.
    assert score("infinitebench_code_debug", "The answer is: Configer._set_option", golds) == 0.0
    assert score("infinitebench_code_debug", "B", golds) == 0.0  # a bare letter is not read
    assert score("infinitebench_code_debug", "The answer is: A", golds) == 0.0


def test_code_run_reads_the_last_word():
    assert score("infinitebench_code_run", "4.", ["4"]) == 1.0
    assert score("infinitebench_code_run", "The value is 4 or 5", ["4"]) == 0.0


def test_math_find_reads_the_first_number_without_a_sign():
    assert score("infinitebench_math_find", "88", ["88"]) == 1.0
    assert score("infinitebench_math_find", "It is 88.0", ["88"]) == 1.0
    assert score("infinitebench_math_find", "-5", ["5"]) == 1.0


def test_math_calc_counts_the_values_right_before_the_first_wrong_one():
    golds = ["3", "7", "5", "15"]
    assert score("infinitebench_math_calc", "[3, 7, 5, 16]", golds) == 0.75
    assert score("infinitebench_math_calc", "[3, 8, 5, 15]", golds) == 0.25
    assert score("infinitebench_math_calc", "[-3, 7]", ["-3", "7"]) == 0.0  # signs are not read


def test_chinese_qa_is_a_character_f1():
    assert score("infinitebench_qa_f1_zh", "胡一刀，马行空", ["胡一刀马行空"]) == 1.0
    # 3 characters predicted, all in the 6 of the gold: P = 1, R = 1/2, F1 = 2/3.
    assert score("infinitebench_qa_f1_zh", "胡一刀", ["胡一刀马行空"]) == pytest.approx(2 / 3)
    assert score("infinitebench_qa_f1_zh", "ABC", ["abc"]) == 1.0  # lower-cased


def test_summary_is_rouge_lsum_over_lines():
    # One line per sentence: the union LCS finds every word, where plain ROUGE-L would find 3 of 5.
    assert score("infinitebench_rouge_lsum", "d e\na b c", ["a b c d e"]) == pytest.approx(1.0)
    assert score("rouge_l", "d e a b c", ["a b c d e"]) == pytest.approx(0.6)

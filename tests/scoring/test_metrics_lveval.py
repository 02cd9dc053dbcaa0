"""LV-Eval's scores (keyword-gated F1 with its blacklist, plain F1, blacklisted ROUGE-L), by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score, score_with_details


def test_the_gate_zeroes_an_answer_that_misses_the_keywords():
    gold = ["Tamsin Hale was born in Wexcombe"]
    value, details = score_with_details(
        "lveval_gated_f1", "Tamsin Hale was born in Wexbury", gold, {"answer_keywords": "Wexcombe"}
    )
    assert value == 0.0
    assert details["f1"] == pytest.approx(5 / 6) and details["keyword_recall"] == 0.0
    assert score(
        "lveval_gated_f1", "born in Wexcombe", gold, {"answer_keywords": "Wexcombe"}
    ) == pytest.approx(2 * (1 * 0.5) / 1.5)


def test_blacklisted_words_do_not_count_as_recalled():
    # Keyword tokens: in, wexcombe, town. "in" is shared but blacklisted: recall 0/3, under 0.2.
    value, details = score_with_details(
        "lveval_gated_f1", "in", ["in Wexcombe town"], {"answer_keywords": "in Wexcombe town"}
    )
    assert value == 0.0 and details["keyword_recall"] == 0.0
    # "town" is not blacklisted: 1/3 passes the gate, and the F1 is 2 * (1 * 1/3) / (4/3) = 0.5.
    assert (
        score("lveval_gated_f1", "town", ["in Wexcombe town"], {"answer_keywords": "in Wexcombe town"}) == 0.5
    )


def test_only_the_first_gold_counts_and_english_without_keywords_has_no_gate():
    assert score("lveval_gated_f1", "Paris", ["Wexcombe", "Paris"], {}) == 0.0
    assert score("lveval_gated_f1", "Wexcombe", ["Wexcombe", "Paris"], {"answer_keywords": None}) == 1.0


def test_chinese_without_keywords_gates_against_the_gold_itself():
    # 北京/是/中国/的/首都: "首都" recalls 1/5 = 0.2, under 0.4.
    value, details = score_with_details("lveval_gated_f1_zh", "首都", ["北京是中国的首都"], {})
    assert value == 0.0 and details["f1"] == pytest.approx(1 / 3)
    # 北京/是/中国/首都: 4 shared, 是 blacklisted, so recall 3/5; F1 = 2 * (1 * 4/5) / (9/5) = 8/9.
    assert score("lveval_gated_f1_zh", "北京是中国首都", ["北京是中国的首都"], {}) == pytest.approx(8 / 9)


def test_factrecall_is_plain_f1_and_chinese_is_lower_cased():
    assert score("lveval_f1", "The answer: Ludwig Beethoven.", ["Beethoven"]) == pytest.approx(
        2 * (1 / 3) / (4 / 3)
    )
    assert score("lveval_f1_zh", "ABC", ["abc"]) == 1.0


def test_dureader_rouge_over_filtered_jieba_words():
    # 长城/很长 against 长城/全长/两万/一千多公里: LCS {长城}, P = 1/2, R = 1/4, F = 1/3.
    assert score("lveval_rouge_zh", "长城很长", ["长城全长两万一千多公里。"]) == pytest.approx(
        1 / 3, abs=1e-6
    )
    assert score("lveval_rouge_zh", "", ["长城"]) == 0.0

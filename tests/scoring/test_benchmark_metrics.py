"""Scorers from published long-context benchmarks (LongBench, LongBench v2, LV-Eval), worked by hand."""

import pytest

from longscope.scoring import SCORERS, score, score_with_details
from longscope.scoring.code_sim import first_code_line
from longscope.scoring.multiple_choice import extract_choice
from longscope.scoring.text_normalize import normalize_en, normalize_zh, normalize_zh_answer, zh_tokens

approx = pytest.approx

BENCHMARK_SCORERS = {
    "qa_f1", "qa_f1_zh", "keyword_gated_f1", "rouge_l", "rouge_l_zh", "classification", "retrieval",
    "retrieval_zh", "count", "code_sim", "choice_letter", "exact_match", "substring_any", "substring_all",
}  # fmt: skip


def test_all_benchmark_scorers_are_registered():
    assert set(SCORERS) >= BENCHMARK_SCORERS


def test_normalisation():
    # lower case, punctuation gone, "the" dropped, whitespace collapsed
    assert normalize_en("The  Cat, sat!") == "cat sat"
    # "an" and "a" are articles; "day" stays
    assert normalize_en("An apple a day") == "apple day"
    # Chinese: "，", "！", ".", "," and the spaces go; case is kept
    assert normalize_zh("你好，世界！ Hello, world.") == "你好世界Helloworld"
    # LongBench's: lower-cased, and only its fixed list goes: "《" and "·" are not on it, "》" is
    assert normalize_zh_answer("《Apple·公司》， Hi") == "《apple·公司hi"
    # jieba words, the final "。" dropped as an empty token
    assert zh_tokens("小明硕士毕业于中国科学院计算所。") == [
        "小明",
        "硕士",
        "毕业",
        "于",
        "中国科学院",
        "计算所",
    ]


def test_qa_f1():
    # [cat, sat] vs [cat, sat, down]: precision 1, recall 2/3, F1 = 2*(2/3)/(5/3) = 0.8
    assert score("qa_f1", "the cat sat", ["a cat sat down"]) == approx(0.8)
    # several golds, the best counts: [barack, obama] vs [obama] -> P 1/2, R 1, F1 2/3;
    # vs [barack, hussein, obama] -> P 1, R 2/3, F1 0.8; max 0.8
    assert score("qa_f1", "Barack Obama", ["Obama", "Barack Hussein Obama"]) == approx(0.8)
    # repeated tokens count once per gold occurrence: shared 1, P 1/3, R 1, F1 0.5
    assert score("qa_f1", "paris paris paris", ["Paris"]) == approx(0.5)
    # empty prediction, disjoint words, no gold: 0
    assert score("qa_f1", "", ["Paris"]) == 0.0
    assert score("qa_f1", "Lyon", ["Paris"]) == 0.0
    assert score("qa_f1", "Paris", []) == 0.0
    # punctuation and case do not matter: exact after normalising
    assert score("qa_f1", "PARIS.", ["paris"]) == 1.0


def test_qa_f1_zh():
    # [小明, 硕士, 毕业, 于, 中国科学院, 计算所] vs [中国科学院, 计算所]: shared 2, P 2/6, R 1, F1 = 0.5
    assert score("qa_f1_zh", "小明硕士毕业于中国科学院计算所。", ["中国科学院计算所"]) == approx(0.5)
    # [我, 爱, 北京] vs [我, 爱, 北京, 天安门] -> P 1, R 3/4, F1 6/7; vs [故宫] -> 0; max 6/7
    assert score("qa_f1_zh", "我爱北京", ["故宫", "我爱北京天安门"]) == approx(6 / 7)
    # punctuation only differs: exact
    assert score("qa_f1_zh", "北京！", ["北京"]) == 1.0
    assert score("qa_f1_zh", "", ["北京"]) == 0.0


def test_keyword_gated_f1_english():
    # keyword [paris] recalled 1/1 >= 0.2; F1 [capital, is, paris, in, france] vs [paris]: P 1/5, R 1, F1 1/3
    value, details = score_with_details(
        "keyword_gated_f1", "The capital is Paris, in France", ["Paris"], {"answer_keywords": ["Paris"]}
    )
    assert value == approx(1 / 3)
    assert details == approx({"f1": 1 / 3, "keyword_recall": 1.0})
    # keywords [eiffel, tower, paris], prediction [it, is, lyon] holds none of them: gated to 0
    value, details = score_with_details(
        "keyword_gated_f1", "It is Lyon", ["Lyon, near Paris"], {"answer_keywords": ["Eiffel Tower", "Paris"]}
    )
    # ungated F1: [it, is, lyon] vs [lyon, near, paris] -> shared 1, P 1/3, R 1/3, F1 1/3; recall 0 -> 0
    assert value == 0.0
    assert details == approx({"f1": 1 / 3, "keyword_recall": 0.0})
    # exactly at the threshold passes: 1 of 5 keyword tokens = 0.2, not below 0.2;
    # F1 [alpha] vs [alpha, beta]: P 1, R 1/2, F1 2/3
    meta = {"answer_keywords": ["alpha beta gamma", "delta epsilon"]}
    assert score("keyword_gated_f1", "alpha", ["alpha beta"], meta) == approx(2 / 3)
    # no keywords: no gate, plain F1 (0.8 as in test_qa_f1)
    assert score("keyword_gated_f1", "the cat sat", ["a cat sat down"], {}) == approx(0.8)
    # empty prediction: 0
    assert score("keyword_gated_f1", "", ["Paris"], {"answer_keywords": ["Paris"]}) == 0.0


def test_keyword_gated_f1_chinese():
    # Chinese found from the CJK gold. Keywords [北京, 天安门]: prediction [我, 爱, 北京] recalls 1/2 >= 0.4;
    # F1 vs [我, 爱, 北京, 天安门]: P 1, R 3/4, F1 6/7
    meta = {"answer_keywords": ["北京", "天安门"]}
    assert score("keyword_gated_f1", "我爱北京", ["我爱北京天安门"], meta) == approx(6 / 7)
    # keywords [北京, 天安门, 故宫]: recall 1/3 < 0.4 (it would pass the English 0.2): gated to 0
    meta = {"answer_keywords": ["北京", "天安门", "故宫"]}
    value, details = score_with_details("keyword_gated_f1", "我爱北京", ["我爱北京天安门"], meta)
    assert value == 0.0
    assert details == approx({"f1": 6 / 7, "keyword_recall": 1 / 3})
    # the language can be named: "en" applies the 0.2 threshold, and English tokens (whitespace split,
    # so "我爱北京" is one token) do not match [北京] at all -> recall 0 -> 0
    meta = {"answer_keywords": ["北京"], "language": "en"}
    assert score("keyword_gated_f1", "我爱北京", ["北京"], meta) == 0.0


def test_rouge_l():
    # [the, cat, sat, on, the, mat] vs [the, cat, is, on, the, mat]: LCS "the cat on the mat" = 5,
    # P 5/6, R 5/6, F 5/6; the other gold shares nothing: max 5/6
    assert score("rouge_l", "The cat sat on the mat", ["a dog", "the cat is on the mat"]) == approx(5 / 6)
    # LCS in order only: [a, b, c] vs [c, b, a] -> LCS 1, P 1/3, R 1/3, F 1/3
    assert score("rouge_l", "a b c", ["c b a"]) == approx(1 / 3)
    assert score("rouge_l", "", ["the cat"]) == 0.0


def test_rouge_l_zh():
    # "我 爱 北京 天安门" vs "我 爱 北京": LCS 3, P 3/4, R 1, F = 2*(3/4)/(7/4) = 6/7
    assert score("rouge_l_zh", "我爱北京天安门", ["我爱北京"]) == approx(6 / 7)
    # several golds: [故宫] shares nothing, [我, 爱, 北京, 天安门] is exact -> 1
    assert score("rouge_l_zh", "我爱北京天安门", ["故宫", "我爱北京天安门"]) == approx(1.0)
    # the Chinese tokens are kept (the default rouge-score tokenizer would erase them)
    assert score("rouge_l_zh", "故宫", ["我爱北京"]) == 0.0
    assert score("rouge_l_zh", "", ["我爱北京"]) == 0.0


def test_classification():
    meta = {"all_classes": ["positive", "negative", "neutral"]}
    # one class found and it is the gold: 1/1
    assert score("classification", "Sentiment: positive", ["positive"], meta) == 1.0
    # two classes found, gold among them: 1/2
    assert score("classification", "positive or negative", ["positive"], meta) == 0.5
    # wrong class, no class, empty prediction, no class list: 0
    assert score("classification", "negative", ["positive"], meta) == 0.0
    assert score("classification", "I cannot tell", ["positive"], meta) == 0.0
    assert score("classification", "", ["positive"], meta) == 0.0
    assert score("classification", "positive", ["positive"], {}) == 0.0


def test_classification_class_inside_another():
    meta = {"all_classes": ["happy", "unhappy"]}
    # gold "unhappy": found [happy, unhappy]; "happy" is inside the gold and not equal to it, so dropped;
    # found [unhappy] -> 1/1
    assert score("classification", "The speaker is unhappy", ["unhappy"], meta) == 1.0
    # gold "happy": found [happy, unhappy]; "unhappy" is not inside "happy", so both stay -> 1/2
    assert score("classification", "The speaker is unhappy", ["happy"], meta) == 0.5
    # several golds, the best counts: "unhappy" gives 1, "happy" 1/2
    assert score("classification", "unhappy", ["happy", "unhappy"], meta) == 1.0


def test_retrieval():
    gold = ["Paragraph 12"]
    # numbers [12]: 1/1
    assert score("retrieval", "Paragraph 12", gold) == 1.0
    # numbers [12, 3]: 1/2
    assert score("retrieval", "Paragraph 12 and Paragraph 3", gold) == 0.5
    # 120 is not 12: 0/1
    assert score("retrieval", "Paragraph 120", gold) == 0.0
    # no number in the answer: 0
    assert score("retrieval", "I do not know", gold) == 0.0
    assert score("retrieval", "", gold) == 0.0
    # several golds: vs 3 -> 0, vs 12 -> 1; max 1
    assert score("retrieval", "It is paragraph 12.", ["Paragraph 3", "Paragraph 12"]) == 1.0


def test_retrieval_zh():
    # jieba plays no part: numbers [12] -> 1
    assert score("retrieval_zh", "答案是段落12", ["段落12"]) == 1.0
    # numbers [3, 12, 12]: 2/3
    assert score("retrieval_zh", "段落3，段落12，段落12", ["段落12"]) == approx(2 / 3)
    assert score("retrieval_zh", "我不知道", ["段落12"]) == 0.0


def test_count():
    # numbers [7]: 1
    assert score("count", "There are 7 unique paragraphs.", ["7"]) == 1.0
    # numbers [7, 8]: 1/2
    assert score("count", "7 or 8", ["7"]) == 0.5
    # words are not numbers: 0
    assert score("count", "seven", ["7"]) == 0.0
    assert score("count", "", ["7"]) == 0.0


def test_code_sim():
    # fence and comment skipped; "    return a + b" equals the gold: ratio 100 -> 1
    fenced = "```python\n# add them\n    return a + b\n```"
    assert first_code_line(fenced) == "    return a + b"
    assert score("code_sim", fenced, ["    return a + b"]) == 1.0
    # "x = 1" vs "x = 2": difflib's matching blocks "x = " (4 of 5 + 5 chars) -> 2*4/10 = 0.8
    assert score("code_sim", "x = 1", ["x = 2"]) == approx(0.8)
    # rounded to a whole percent as fuzzywuzzy does: "abc" vs "abd" is 2*2/6 = 0.667 -> 67 -> 0.67
    assert score("code_sim", "abc", ["abd"]) == 0.67
    # "//" comment skipped; several golds, max: vs "bar()" -> not 1, vs "foo()" -> 1
    assert score("code_sim", "// call it\nfoo()", ["bar()", "foo()"]) == 1.0
    # only fences and comments, or nothing: 0
    assert score("code_sim", "```\n# nothing\n```", ["foo()"]) == 0.0
    assert score("code_sim", "", ["foo()"]) == 0.0


def test_choice_letter():
    assert extract_choice("The correct answer is (B)") == "B"
    assert extract_choice("The correct answer is B.") == "B"
    assert extract_choice("**Answer: C**") == "C"
    assert extract_choice(" (d) ") == "D"
    # hedging, or "a" as an article, gives no letter
    assert extract_choice("I think it's B or C") is None
    assert extract_choice("The correct answer is a difficult one") is None
    assert score("choice_letter", "The correct answer is (B)", ["B"]) == 1.0
    assert score("choice_letter", "The correct answer is (B)", ["(B)"]) == 1.0
    assert score("choice_letter", "Answer: A", ["B"]) == 0.0
    assert score("choice_letter", "", ["B"]) == 0.0


def test_exact_match():
    # "the" and "." go: "eiffel tower" both sides
    assert score("exact_match", "The Eiffel Tower.", ["eiffel tower"]) == 1.0
    # more words than the gold: 0
    assert score("exact_match", "Eiffel Tower in Paris", ["eiffel tower"]) == 0.0
    # several golds: the second matches
    assert score("exact_match", "Paris", ["Lyon", "paris"]) == 1.0
    assert score("exact_match", "", ["Paris"]) == 0.0


def test_substring_any_and_all():
    text = "It was the Eiffel Tower, in Paris."
    # "eiffel tower" is in "it was eiffel tower in paris"; "louvre" is not
    assert score("substring_any", text, ["Eiffel Tower", "Louvre"]) == 1.0
    assert score("substring_all", text, ["Eiffel Tower", "Louvre"]) == 0.0
    assert score("substring_all", text, ["Eiffel Tower", "Paris"]) == 1.0
    # whole words only: "12" is not in "120 apples"
    assert score("substring_any", "120 apples", ["12"]) == 0.0
    # a gold that normalises to nothing is never found; no golds: 0
    assert score("substring_any", text, ["the"]) == 0.0
    assert score("substring_any", text, []) == 0.0
    assert score("substring_all", text, []) == 0.0
    assert score("substring_any", "", ["Paris"]) == 0.0

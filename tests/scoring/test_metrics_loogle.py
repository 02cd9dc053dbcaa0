"""LooGLE's automatic scores: ROUGE-L recall for QA and summaries, exact/partial match for clozes."""

from __future__ import annotations

import math

import pytest

from longscope.scoring import score_with_details
from longscope.scoring.loogle import parse_cloze


def test_rouge_l_recall_and_the_other_scores_in_the_details():
    value, details = score_with_details("loogle_rouge_l", "born in Tarifa", ["She was born in Tarifa"])
    assert value == pytest.approx(3 / 5)  # born, in, Tarifa of the 5 reference words
    assert details["rougeL_p"] == pytest.approx(1.0)
    assert details["rouge1_r"] == pytest.approx(0.6)
    assert details["rouge2_r"] == pytest.approx(0.5)  # "born in", "in Tarifa" of 4 bigrams
    # BLEU-1: every word right, times the brevity penalty exp(1 - 5/3).
    assert details["bleu1"] == pytest.approx(math.exp(1 - 5 / 3))


def test_rouge_keeps_case_and_an_empty_reply_reads_none():
    assert score_with_details("loogle_rouge_l", "BORN IN TARIFA", ["She was born in Tarifa"])[0] == 0.0
    assert score_with_details("loogle_rouge_l", "", ["None of them"])[0] == pytest.approx(1 / 3)
    assert score_with_details("loogle_rouge_l", "...", ["a b"])[0] == 0.0


def test_cloze_exact_and_partial_match_per_mask():
    gold = ['{"<mask-0>": "Cerina Aragones", "<mask-1>": "Kentwood"}']
    value, details = score_with_details(
        "loogle_cloze", "{'<mask-0>': 'Cerina Aragones', '<mask-1>': 'Kent'}", gold
    )
    assert value == 0.5 and details["partial_match"] == 0.5
    value, details = score_with_details("loogle_cloze", ' {"<mask-0>": "Aragones"}\n', gold)
    assert value == 0.0 and details["partial_match"] == 0.5
    assert score_with_details("loogle_cloze", "Cerina Aragones", gold) == (0.0, {"partial_match": 0.0})


def test_cloze_replies_are_parsed_as_literals_never_run():
    assert parse_cloze("__import__('os').getcwd()") is None
    assert parse_cloze("['<mask-0>', 'Bob']") is None
    assert parse_cloze("{'<mask-0>': 'Bob'}") == {"<mask-0>": "Bob"}

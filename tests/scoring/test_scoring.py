"""Scorers: RULER's containment metrics, worked by hand."""

from longscope.scoring import SCORERS, score


def test_contains_all_is_the_share_of_gold_strings_found():
    gold = ["1234567", "7654321", "5555555", "abc-def"]
    assert score("contains_all", "1234567 and ABC-DEF", gold) == 0.5
    assert score("contains_all", "1234567, 7654321, 5555555, abc-def", gold) == 1.0
    assert score("contains_all", "I do not know.", gold) == 0.0
    assert score("contains_all", "", gold) == 0.0
    assert score("contains_all", "anything", []) == 0.0


def test_contains_any_needs_one_gold_string():
    assert score("contains_any", "It was Paris.", ["paris", "Lyon"]) == 1.0
    assert score("contains_any", "It was Rome.", ["paris", "Lyon"]) == 0.0


def test_registry_lists_scorers():
    assert {"contains_all", "contains_any"} <= set(SCORERS)

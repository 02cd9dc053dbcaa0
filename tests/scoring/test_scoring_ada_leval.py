"""Ada-LEval's answer extraction and exact accuracy (TSort order, BestAnswer designation), worked by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score
from longscope.scoring.ada_leval import extract_designation, extract_order

TSORT = {"ada_task": "tsort"}


def test_tsort_order_extraction():
    assert extract_order("Answer: [2, 4, 1, 3]", 4) == [2, 4, 1, 3]
    assert extract_order("[1, 2, 3, 4]", 4) == [1, 2, 3, 4]
    # not JSON: the one permutation of 1..4 whose digits occur in that order
    assert extract_order("The order is 3, then 1, then 4 and finally 2.", 4) == [3, 1, 4, 2]
    # only the text after the first "Answer:" is read
    assert extract_order("Sections 1 2 3 4 are shuffled. Answer: 4 3 2 1", 4) == [4, 3, 2, 1]
    # digits allowing two permutations ("1 2 3 4 1": 1234 and 2341), or none, give nothing
    assert extract_order("1 2 3 4 1", 4) is None
    assert extract_order("no idea", 4) is None
    # a JSON value that is not a list of numbers is read as text
    assert extract_order('Answer: "2 1 3 4"', 4) == [2, 1, 3, 4]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Answer: [2, 4, 1, 3]", 1.0),
        ("Answer: [2, 4, 3, 1]", 0.0),
        ("2 4 1 3", 1.0),
        ("Answer: [2, 4, 1]", 0.0),  # a shorter list is not the order of all four
        ("", 0.0),
    ],
)
def test_tsort_accuracy(reply, expected):
    assert score("ada_leval", reply, ["2", "4", "1", "3"], TSORT) == expected


def test_bestanswer_designation_extraction():
    assert extract_designation("Answer: A3", 4) == "A3"
    # of the designations found, the highest: "A12" also holds "A1", and A12 wins
    assert extract_designation("Answer: A12", 12) == "A12"
    assert extract_designation("A2 is better than A1", 4) == "A2"
    # no "A<n>": bare numbers, the highest found
    assert extract_designation("The third one, number 3.", 4) == "A3"
    assert extract_designation("None of them.", 4) is None
    # a designation beyond the candidates is not one: "A7" with 4 candidates reads as nothing of A1..A4,
    # then as the bare number... 7 is not among 1..4 either
    assert extract_designation("A7", 4) is None


@pytest.mark.parametrize(
    ("reply", "gold", "expected"),
    [
        ("Answer: A2", "A2", 1.0),
        ("Answer: A2", "A1", 0.0),
        ("I pick answer 2.", "A2", 1.0),
        ("A1 or A3", "A3", 1.0),
        ("nothing", "A1", 0.0),
    ],
)
def test_bestanswer_accuracy(reply, gold, expected):
    assert score("ada_leval", reply, [gold], {"ada_task": "bestanswer", "num_choice": 3}) == expected


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        score("ada_leval", "A1", ["A1"], {})

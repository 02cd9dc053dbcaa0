"""Ada-LEval's answer extraction and accuracy (TSort order, BestAnswer designation), against its own code.

The values marked official were computed once, outside this project, by running the ``TextSort.evaluate`` and
``StackSelect.evaluate`` of open-compass/Ada-LEval's ada_leval/dataset.py (commit
2154258d5fa3969ac5429b3132d505570ef8a57a, Python 3.11, pandas) on a one-row table per case; "raises" marks a
case on which that evaluation stops with a TypeError. Nothing of that code is in the project.
"""

from __future__ import annotations

import pytest

from longscope.scoring import score, score_with_details
from longscope.scoring.ada_leval import answer_text, extract_designation, extract_order

TSORT = {"ada_task": "tsort"}
GOLD = ["2", "4", "1", "3"]

# (reply, Ada-LEval's score for gold [2, 4, 1, 3], the strict full_order reading)
TSORT_OFFICIAL = [
    ("Answer: [2, 4, 1, 3]", 1.0, 1.0),
    # The comparison stops at the shorter list: empty, a prefix, or a longer list starting with the gold.
    ("Answer: []", 1.0, 0.0),
    ("Answer: [2, 4]", 1.0, 0.0),
    ("Answer: [2, 4, 1, 3, 5]", 1.0, 0.0),
    # A list of strings: "2" is not 2.
    ('["2", "4", "1", "3"]', 0.0, 0.0),
    # Only the text between the first "Answer:" and the second is read.
    ("Answer: [2, 4, 3, 1] Answer: [2, 4, 1, 3]", 0.0, 0.0),
    ("Answer: 2 4 1 3 Answer: [1, 2, 3, 4]", 1.0, 1.0),
    ("Answer: [1, 2, 3, 4]\nAnswer: [2, 4, 1, 3]", 0.0, 0.0),
    ("[2,4,1,3]\nAnswer:", 0.0, 0.0),
    # Not JSON: the one order of 1-4 whose digits occur in that order; none or several give [0, 0, 0, 0].
    ("2 4 1 3", 1.0, 1.0),
    ("The order is 2, then 4, then 1, then 3.", 1.0, 1.0),
    ("Answer: [2, 4, 1, 3] (final)", 1.0, 1.0),
    ("1 2 3 4 1", 0.0, 0.0),
    ("", 0.0, 0.0),
    # Other JSON values are compared as they are: an empty string or object holds nothing to compare.
    ('Answer: ""', 1.0, 0.0),
    ("Answer: {}", 1.0, 0.0),
    ('Answer: "2 4 1 3"', 0.0, 0.0),
    ("Answer: [2.0, 4, 1, 3]", 1.0, 1.0),
    # Too deeply nested for json: read as text (Ada-LEval's bare except), which holds no order.
    ("[" * 100_000, 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("reply", "official", "strict"), TSORT_OFFICIAL, ids=[c[0][:40] for c in TSORT_OFFICIAL]
)
def test_tsort_scores_equal_ada_levals_own(reply, official, strict):
    value, details = score_with_details("ada_leval", reply, GOLD, TSORT)
    assert value == official
    assert details == {"full_order": strict}


@pytest.mark.parametrize("reply", ["Answer: 2413", "Answer: null", "Answer: true"])
def test_tsort_json_scalars_where_ada_leval_raises_score_zero_with_the_reason(reply):
    # Ada-LEval's evaluation raises TypeError on each of these (an int, None, a bool is not iterable).
    value, details = score_with_details("ada_leval", reply, GOLD, TSORT)
    assert value == 0.0 and details["full_order"] == 0.0
    assert "not a list" in details["reason"]


def test_tsort_extraction():
    assert answer_text("Sections 1 2 3 4. Answer: [4, 3] Answer: x") == "[4, 3]"
    assert answer_text("  [1, 2]  ") == "  [1, 2]  "  # without "Answer:" nothing is stripped
    assert extract_order("Answer: [2, 4, 1, 3]") == [2, 4, 1, 3]
    assert extract_order('Answer: ["2"]') == ["2"]
    assert extract_order("Answer: 7") == 7
    assert extract_order("The order is 3, then 1, then 4 and finally 2.") == [3, 1, 4, 2]
    assert extract_order("no idea") == [0, 0, 0, 0]


def test_bestanswer_designation_extraction():
    assert extract_designation("Answer: A3", 4) == "A3"
    # of the designations found, the highest: "A12" also holds "A1", and A12 wins
    assert extract_designation("Answer: A12", 12) == "A12"
    assert extract_designation("A2 is better than A1", 4) == "A2"
    # no "A<n>": bare numbers, the highest found
    assert extract_designation("The third one, number 3.", 4) == "A3"
    assert extract_designation("None of them.", 4) is None
    # "A7" with 4 candidates is none of A1..A4, and 7 is not among the bare numbers 1..4 either
    assert extract_designation("A7", 4) is None


# (reply, gold, number of candidates, Ada-LEval's score)
BESTANSWER_OFFICIAL = [
    ("Answer: A2", "A2", 3, 1.0),
    ("A1 or A3", "A3", 3, 1.0),
    ("I pick answer 2.", "A2", 3, 1.0),
    ("Answer: A12", "A12", 12, 1.0),
    ("A7", "A1", 4, 0.0),
    ("", "A1", 3, 0.0),
    ("A10 is best", "A1", 12, 0.0),
]


@pytest.mark.parametrize(("reply", "gold", "choices", "official"), BESTANSWER_OFFICIAL)
def test_bestanswer_scores_equal_ada_levals_own(reply, gold, choices, official):
    assert score("ada_leval", reply, [gold], {"ada_task": "bestanswer", "num_choice": choices}) == official


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        score("ada_leval", "A1", ["A1"], {})

"""NeedleBench v2's scores: keywords found verbatim, and the cleaned \\boxed{} answer, worked by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score, score_with_details
from longscope.scoring.needlebench import clean_boxed, last_boxed


def test_keywords_single_and_several():
    assert score("needlebench_keywords", "It is the Stardust Shard.", ["Stardust Shard"]) == 1.0
    assert score("needlebench_keywords", "It is the stardust shard.", ["Stardust Shard"]) == 0.0
    assert score_with_details("needlebench_keywords", "Amber Crown and Ivory Key", ["Amber Crown"]) == (
        1.0,
        {},
    )
    value, details = score_with_details(
        "needlebench_keywords",
        "Amber Crown, then Jade Flute",
        ["Amber Crown", "Ivory Key", "Jade Flute", "Map"],
    )
    assert value == 0.5
    assert details == {"needle_1": 1.0, "needle_2": 0.0, "needle_3": 1.0, "needle_4": 0.0}
    assert score("needlebench_keywords", "anything", []) == 0.0


def test_last_boxed_answer():
    assert last_boxed("first \\boxed{A} then \\boxed{B C}.") == "B C"
    assert last_boxed("nested \\boxed{\\text{Kevin Le}} end") == "\\text{Kevin Le}"
    assert last_boxed("double \\boxed{{Kevin Le}}") == "Kevin Le"
    assert last_boxed("open \\boxed{Kevin") is None
    assert last_boxed("no box here") is None
    assert last_boxed("\\fbox{Kevin Le}") is None  # found, but only \boxed{} gives an answer


def test_clean_boxed_answer():
    assert clean_boxed("\\text{Kevin Le}") == "Kevin Le"
    assert clean_boxed("'Kevin  Le'") == "Kevin Le"
    assert clean_boxed('"Kevin~Le"') == "Kevin Le"
    assert clean_boxed("Kevin\\ Le") == "Kevin Le"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("So the eldest is \\boxed{Kevin Le}.", 1.0),
        ("\\boxed{\\text{Kevin Le}}", 1.0),
        ("\\boxed{ 'Kevin Le' }", 1.0),
        ("\\boxed{Kevin Le} no wait, \\boxed{Dan Newton}", 0.0),  # the last box counts
        ("\\boxed{kevin le}", 0.0),  # exact, case included
        ("Kevin Le", 0.0),  # no box, no answer
        ("\\boxed{Kevin Le (the father)}", 0.0),
    ],
)
def test_boxed_score(reply, expected):
    assert score("needlebench_boxed", reply, ["Kevin Le"]) == expected

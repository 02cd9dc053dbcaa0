"""Reading judge replies: lenient where unambiguous, refused with the reason otherwise."""

from __future__ import annotations

import pytest

from longscope.judging.parse import MalformedReply, parse_reply


def test_numbered_lines_with_prose_around_them():
    reply = (
        "Here is my evaluation.\n\n1: 0.75 - mostly there\n2: 1 - yes\n**3.** 0.25 - barely\n\nOverall fine."
    )
    parsed = parse_reply(reply, 3)
    assert parsed.grades == (0.75, 1.0, 0.25)
    assert parsed.score == pytest.approx(2.0 / 3.0)
    assert parsed.notes == ()


def test_fractions_percentages_and_off_step_values_are_read_and_noted():
    parsed = parse_reply("Item 1 - 3/4\nItem 2: 50%\n3) score: 0.8", 3)
    assert parsed.grades == (0.75, 0.5, 0.75)
    assert parsed.notes == ("item 3: 0.8 read as 0.75",)


def test_a_helloBench_style_json_list_counts_its_ids_from_zero():
    reply = '```json\n[{"checklist_id": 0, "reason": "ok", "evaluation_score": "0.5"},' \
            ' {"checklist_id": 1, "reason": "no", "evaluation_score": 0}]\n```'  # fmt: skip
    assert parse_reply(reply, 2).grades == (0.5, 0.0)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("1: 1\n2: 0.5", "item 3 not graded"),
        ("1: 1", "items 2, 3 not graded"),
        ("1: 1\n2: 5\n3: 0", "item 2: grade 5 is outside 0-1"),
        ("1: 1\n2: -0.5\n3: 0", "item 2: grade -0.5 is outside 0-1"),
        ("1: 1\n2: 0.5\n3: 0\n4: 1", "item 4 does not exist; there are 3 items"),
        ("1: 1\n1: 0\n2: 1\n3: 1", "item 1 is graded twice, 1 and 0"),
        ("The response is good overall, I would say.", "no graded items found"),
    ],
)
def test_malformed_replies_are_refused_with_what_is_wrong(reply, problem):
    with pytest.raises(MalformedReply, match=problem):
        parse_reply(reply, 3)


def test_the_same_grade_repeated_is_not_a_conflict():
    assert parse_reply("1: 1\n1: 1.0\n2: 0\n3: 0.5", 3).grades == (1.0, 0.0, 0.5)

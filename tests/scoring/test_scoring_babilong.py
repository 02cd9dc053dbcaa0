"""BABILong's answer check (compare_answers), worked by hand."""

from __future__ import annotations

import pytest

from longscope.scoring import score
from longscope.scoring.babilong import TASK_LABELS, first_sentence


def test_first_sentence_is_lower_cased_and_stops_at_examples():
    assert first_sentence("The Kitchen. Then the garden.") == "the kitchen"
    assert first_sentence("garden <example> bedroom") == "garden "
    assert first_sentence("hallway\n<context>\nbedroom") == "hallway\n"


def test_every_babi_task_has_its_labels():
    assert sorted(TASK_LABELS, key=lambda t: int(t[2:])) == [f"qa{i}" for i in range(1, 21)]


@pytest.mark.parametrize(
    ("reply", "target", "question", "task", "expected"),
    [
        ("The most recent location of Mary is bathroom.", "bathroom", "Where is Mary?", "qa1", 1.0),
        ("Bathroom. Before that she was in the kitchen.", "bathroom", "Where is Mary?", "qa1", 1.0),
        ("bathroom or kitchen", "bathroom", "Where is Mary?", "qa1", 0.0),
        ("kitchen", "bathroom", "Where is Mary?", "qa1", 0.0),
        # labels the question itself names never count: Mary and apple are in the question
        ("Mary gave the apple to Fred.", "Fred", "Who did Mary give the apple to?", "qa5", 1.0),
        ("apple, milk", "apple,milk", "What is Daniel carrying?", "qa8", 1.0),
        ("apple", "apple,milk", "What is Daniel carrying?", "qa8", 0.0),
        ("s,e", "s,e", "How do you go from the kitchen to the garden?", "qa19", 1.0),
        # BABILong finds labels as substrings: "none" also contains "one", so a bare "none" names two labels
        ("none", "none", "How many objects is Mary carrying?", "qa7", 0.0),
        ("two", "two", "How many objects is Mary carrying?", "qa7", 1.0),
    ],
)
def test_babilong_answer_check_by_hand(reply, target, question, task, expected):
    assert score("babilong", reply, [target], {"qa_task": task, "question": question}) == expected


def test_unknown_task_in_metadata_is_an_error():
    with pytest.raises(ValueError, match="unknown bAbI task"):
        score("babilong", "kitchen", ["kitchen"], {"qa_task": "qa99"})

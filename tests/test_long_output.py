"""Long-output tasks (issue 15): each rule scorer on right, partly right and wrong outputs worked by hand, the
length score at its edges, segmentation, the schedule validator, and reference solvers that score 1."""

from __future__ import annotations

import json
import re

import pytest
from contracts.test_tasks import backend

from longscope.core import UsageError
from longscope.scoring import score_with_details
from longscope.scoring.length_score import count_words, length_score
from longscope.scoring.period_constraints import segments
from longscope.scoring.schedule import checks, holds
from longscope.tasks import make_task


def positions(details: dict) -> list:
    return json.loads(details["item_positions"])


# ---------------------------------------------------------------------------------------------------------
# Length score (LongWriter): S = 1 - (l'/l - 1)/3 above, 1 - (l/l' - 1)/2 below, clipped at 0


@pytest.mark.parametrize(
    "required,produced,expected",
    [
        (100, 100, 1.0),  # exact
        (100, 50, 0.5),  # half: 1 - (2 - 1)/2
        (100, 200, 2 / 3),  # double: 1 - (2 - 1)/3
        (100, 400, 0.0),  # four times: 1 - 3/3
        (100, 1000, 0.0),  # clipped
        (100, 0, 0.0),  # nothing written
        (300, 100, 0.0),  # a third: 1 - (3 - 1)/2
        (100, 80, 0.875),  # 1 - (1.25 - 1)/2
    ],
)
def test_length_score_edges(required, produced, expected):
    assert length_score(required, produced) == pytest.approx(expected)


def test_the_length_scorer_counts_as_longwriter_does():
    # Letters-only words, each CJK character one: "don't" is two, "42" nothing.
    assert count_words("Don't stop at 42 now") == 5  # Don, t, stop, at, now
    assert count_words("我们 write 中文") == 5
    score, details = score_with_details("length_following", "word " * 50, [], {"required_words": 100})
    assert (
        score == pytest.approx(0.5)
        and details["produced_words"] == 50.0
        and details["required_words"] == 100.0
    )
    score, details = score_with_details(
        "length_following", "字" * 200, [], {"required_words": 100, "length_unit": "chars"}
    )
    assert score == pytest.approx(2 / 3) and details["length_unit"] == "chars"


# ---------------------------------------------------------------------------------------------------------
# Packed answers


def test_packed_answers_scores_each_question_and_places_it():
    gold = ["1: 12", "2: 7", "3: 9", "4: 1"]
    output = "1: 12\nfoo\n2: 7 apples\n3: 8"  # 1 right, 2 right, 3 wrong, 4 missing
    score, details = score_with_details("packed_answers", output, gold)
    assert score == 0.5 and details["answered"] == 0.75
    # Line starts at 0, 10 and 22 of 26 characters.
    assert positions(details) == [[0.0, 1.0], [round(10 / 26, 4), 1.0], [round(22 / 26, 4), 0.0], [None, 0.0]]
    assert json.loads(details["item_ids"]) == [1, 2, 3, 4]
    assert score_with_details("packed_answers", "1: 13\n2: 8", gold)[0] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Table rows


GOLD_TABLE = "Name\tCity\tYear\nAmber Fox\tOslo\t1990\nBrave Owl\tRome\t2001\nCalm Elk\tLima\t1975"


def test_table_rows_f1_right_partly_right_and_wrong():
    assert (
        score_with_details("table_rows_f1", "```tsv\n" + GOLD_TABLE.lower() + "\n```", [GOLD_TABLE])[0] == 1.0
    )
    # Two predicted rows, one of them right: precision 1/2, recall 1/3, F1 = 2 * (1/6) / (5/6) = 0.4.
    output = "Name\tCity\tYear\nAmber Fox\tOslo\t1990\nBrave Owl\tRome\t2002"
    score, details = score_with_details("table_rows_f1", output, [GOLD_TABLE])
    assert (
        score == pytest.approx(0.4)
        and details["precision"] == 0.5
        and details["recall"] == pytest.approx(1 / 3)
    )
    assert positions(details) == [[round(15 / len(output), 4), 1.0], [None, 0.0], [None, 0.0]]
    assert score_with_details("table_rows_f1", "Amber Fox, Oslo, 1990", [GOLD_TABLE])[0] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Procedure states


def test_procedure_states_right_partly_right_and_wrong():
    gold = "State 1: A=1, B=2\nState 2: A=3, B=2\nState 3: A=0, B=2"
    assert (
        score_with_details(
            "procedure_states", "State 1: A = 1; B = 2\nState 2: A=3, B=2\nState 3: A=0, B=2", [gold]
        )[0]
        == 1
    )
    # State 3 leaves B out: two states of three.
    score, details = score_with_details(
        "procedure_states", "State 1: A=1, B=2\nState 2: A=3,B=2\nState 3: A=0", [gold]
    )
    assert score == pytest.approx(2 / 3) and [s for _, s in positions(details)] == [1.0, 1.0, 0.0]
    assert score_with_details("procedure_states", "State 2: A=1, B=2", [gold])[0] == 0.0


# ---------------------------------------------------------------------------------------------------------
# The schedule validator


SCHEDULE = {
    "days": 2,
    "slots": 2,
    "meetings": ["Red Fox", "Blue Owl", "Green Elk"],
    "constraints": [
        ["on_day", "Red Fox", 1],
        ["before", "Blue Owl", "Green Elk"],
        ["apart", "Red Fox", "Green Elk"],
    ],
}


def test_the_schedule_validator_accepts_any_valid_schedule_and_names_what_breaks():
    valid = {"Red Fox": (1, 1), "Blue Owl": (1, 2), "Green Elk": (2, 1)}
    assert all(ok for _, ok in checks(SCHEDULE, valid))
    other_valid = {"Red Fox": (1, 2), "Blue Owl": (2, 1), "Green Elk": (2, 2)}
    assert all(ok for _, ok in checks(SCHEDULE, other_valid))
    clash = {"Red Fox": (1, 1), "Blue Owl": (1, 1), "Green Elk": (2, 1)}
    assert [ok for _, ok in checks(SCHEDULE, clash)] == [False, False, True, True, True, True]
    assert not holds(["before", "Green Elk", "Blue Owl"], valid)
    assert not holds(["same_day", "Red Fox", "Green Elk"], valid)
    assert not holds(["not_slot", "Red Fox", 1], valid)
    assert not holds(["on_day", "Missing", 1], valid)


def test_schedule_scorer_on_right_partly_right_and_wrong_timetables():
    meta = {"schedule": SCHEDULE}
    right = (
        "Red Fox: Day 2, slot 2\n".replace("Day 2, slot 2", "Day 1, slot 1")
        + "Blue Owl: Day 1, slot 2\nGreen Elk: Day 2, slot 1"
    )
    assert score_with_details("schedule_constraints", right, [], meta) == (
        1.0,
        score_with_details("schedule_constraints", right, [], meta)[1],
    )
    # Red Fox on day 2 breaks on_day and apart: 4 of 6 checks pass.
    partly = "Red Fox: Day 2, slot 2\nBlue Owl: Day 1, slot 2\nGreen Elk: Day 2, slot 1"
    score, details = score_with_details("schedule_constraints", partly, [], meta)
    assert score == pytest.approx(4 / 6) and details["valid"] == 0.0
    assert score_with_details("schedule_constraints", "I cannot tell.", [], meta)[0] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Period constraints


def test_segments_cut_at_headers_of_the_unit():
    text = "Intro\nDay 1: rain.\n## Day 2 - yoga class\nmore\n**Day 10:** end\nWeek 3: no"
    cut = segments(text, "Day")
    assert sorted(cut) == [1, 2, 10]
    assert cut[2] == (text.index("## Day 2"), "## Day 2 - yoga class\nmore\n")
    assert cut[10][1] == "**Day 10:** end\nWeek 3: no"


def test_period_constraints_right_partly_right_and_wrong():
    meta = {
        "unit": "Day",
        "periods": 3,
        "constraints": [
            {"event": "yoga class", "kind": "once", "periods": [2]},
            {"event": "book club", "kind": "range", "periods": [1, 2]},
        ],
    }
    right = "Day 1: book club.\nDay 2: Yoga class and book club.\nDay 3: quiet."
    assert score_with_details("period_constraints", right, [], meta)[0] == 1.0
    # Yoga also on day 3 breaks "once"; book club missing on day 1: one check of three passes.
    partly = "Day 1: quiet.\nDay 2: yoga class, book club.\nDay 3: yoga class."
    score, details = score_with_details("period_constraints", partly, [], meta)
    assert score == pytest.approx(1 / 3) and details["periods_written"] == 1.0
    # A miss inside a written period is placed at that period's header.
    assert positions(details)[1] == [0.0, 0.0]
    assert score_with_details("period_constraints", "No headers at all", [], meta)[0] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Reference solvers: the gold output from the context alone scores 1


def solve_table(context: str) -> str:
    rows = re.findall(r"<tr>(.*?)</tr>", context)
    return "\n".join("\t".join(re.findall(r"<t[hd]>(.*?)</t[hd]>", row)) for row in rows)


def solve_procedure(context: str) -> str:
    state = {
        k: int(v)
        for k, v in re.findall(r"([A-D])=(-?\d+)", context.split("Initial values:")[1].split("\n")[0])
    }
    lines = []
    for number, step in re.findall(r"Step (\d+): (.*?)\.\n", context):
        words = step.split()
        if step.startswith("add the value of"):
            state[words[-1]] += state[words[4]]
        elif step.startswith("add"):
            state[words[-1]] += int(words[1])
        elif step.startswith("subtract"):
            state[words[-1]] -= int(words[1])
        elif step.startswith("set"):
            state[words[1]] = state[words[-1]]
        else:
            state[words[4]], state[words[6]] = state[words[6]], state[words[4]]
        lines.append(f"State {number}: " + ", ".join(f"{k}={v}" for k, v in state.items()))
    return "\n".join(lines)


def solve_schedule(context: str) -> str:
    """A brute-force search over the rules stated in the context (backtracking in the given order)."""
    days = int(re.search(r"There are (\d+) days", context).group(1))
    slots = int(re.search(r"each with (\d+) slots", context).group(1))
    names = re.search(r"Meetings: (.*)\.\n", context).group(1).split(", ")
    rules = []
    for text in re.findall(r"Rule \d+: (.*)", context):
        if m := re.match(r"(.+) takes place on day (\d+)\.", text):
            rules.append(["on_day", m[1], int(m[2])])
        elif m := re.match(r"(.+) must not be in slot (\d+)", text):
            rules.append(["not_slot", m[1], int(m[2])])
        elif m := re.match(r"(.+) takes place before (.+) \(", text):
            rules.append(["before", m[1], m[2]])
        elif m := re.match(r"(.+) and (.+) take place on (the same|different) days?\.", text):
            rules.append(["same_day" if m[3] == "the same" else "apart", m[1], m[2]])
    schedule = {"days": days, "slots": slots, "meetings": names, "constraints": rules}
    placed: dict = {}

    def ok() -> bool:
        return all(
            holds(r, placed)
            for r in rules
            if r[1] in placed and (r[0] in ("on_day", "not_slot") or r[2] in placed)
        )

    def place(i: int) -> bool:
        if i == len(names):
            return True
        for where in [(d, s) for d in range(1, days + 1) for s in range(1, slots + 1)]:
            if where not in placed.values():
                placed[names[i]] = where
                if ok() and place(i + 1):
                    return True
                del placed[names[i]]
        return False

    assert place(0) and all(good for _, good in checks(schedule, placed))
    return "\n".join(f"{n}: Day {d}, slot {s}" for n, (d, s) in placed.items())


def solve_diary(context: str) -> str:
    periods: dict[int, set[str]] = {}
    last = 10
    for text in re.findall(r"Instruction: (.*?\.)(?=\s|$)", context):
        if m := re.match(r"Mention the (.+) in the entry for Day (\d+), and", text):
            periods.setdefault(int(m[2]), set()).add(m[1])
        elif m := re.match(r"Mention the (.+) in every entry from Day (\d+) to Day (\d+)", text):
            for p in range(int(m[2]), int(m[3]) + 1):
                periods.setdefault(p, set()).add(m[1])
        elif m := re.match(r"Mention the (.+) every (\d+) days, starting with the entry for Day (\d+)", text):
            for p in range(int(m[3]), last + 1, int(m[2])):
                periods.setdefault(p, set()).add(m[1])
    return "\n".join(
        f"Day {p}: " + " ".join(f"We had the {e}." for e in sorted(periods.get(p, ())))
        for p in range(1, last + 1)
    )


@pytest.mark.parametrize(
    "spec,solver",
    [
        ("procedural(kind=html_to_tsv)", solve_table),
        ("procedural(kind=procedure)", solve_procedure),
        # A small instance: the test's solver is a plain backtracking search.
        ("procedural(kind=schedule,budget=128)", solve_schedule),
        ("constrained_writing(constraints=6)", solve_diary),
    ],
)
def test_a_reference_solver_reading_only_the_context_scores_one(spec, solver):
    task = make_task(spec)
    for seed in (1, 2):
        sample = task.build(backend(), 3072, None, seed)
        score, details = score_with_details(
            task.metric, solver(sample.context), sample.answers, sample.metadata
        )
        assert score == 1.0, details
        assert all(position is not None and s == 1.0 for position, s in positions(details))


def test_packed_and_one_at_a_time_ask_the_same_questions():
    packed = make_task("packed_questions(questions=8)").build(backend(), 1024, None, 4)
    single = make_task("packed_questions(questions=8,one_at_a_time=true)").build(backend(), 1024, None, 4)
    assert packed.metadata["packed"] and not single.metadata["packed"] and single.metadata["questions"] == 8
    assert len(packed.turns) == 1 and len(single.turns) == 8
    assert [a for t in single.turns for a in t.answers] == list(packed.answers)
    assert packed.metadata["question_ids"] == single.metadata["question_ids"] == list(range(1, 9))
    for number, turn in enumerate(single.turns, start=1):
        assert f"\n{number}. " in "\n" + packed.question.split("\n\n", 1)[1]
        assert turn.question.split("\n\n", 1)[1] in packed.question


def test_procedural_budget_sizes_the_instance():
    small = make_task("procedural(kind=procedure,budget=512)").build(backend(), 3072, None, 1)
    large = make_task("procedural(kind=procedure,budget=1024)").build(backend(), 4096, None, 1)
    assert large.metadata["steps"] >= 2 * small.metadata["steps"] - 1
    # The expected output fills about three quarters of the budget in the model's tokenizer.
    assert 0.6 * 1024 <= backend().count_tokens(large.answers[0]) <= 1024
    assert 0.6 * 512 <= backend().count_tokens(small.answers[0]) <= 512


def test_budget_above_the_model_window_is_refused_up_front():
    class Window:
        context_window = 1500

        def __getattr__(self, name):
            return getattr(backend(), name)

    with pytest.raises(UsageError, match="do not fit the model window of 1500 tokens"):
        make_task("length_following(words=800)").check(Window(), 4096)

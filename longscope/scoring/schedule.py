"""Schedules: a validator for meeting timetables written as lines, against the constraints the context stated."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.positions import item_positions, lines_with_offsets, relative

# A constraint is a list: [kind, meeting, argument]. Kinds and what they demand of the schedule:
#   ["on_day", X, d]      X takes place on day d
#   ["not_slot", X, s]    X is not in slot s (on any day)
#   ["before", X, Y]      X ends before Y starts: an earlier day, or the same day and an earlier slot
#   ["same_day", X, Y]    X and Y take place on the same day
#   ["apart", X, Y]       X and Y take place on different days
KINDS = ("on_day", "not_slot", "before", "same_day", "apart")

Slot = tuple[int, int]  # (day, slot), both counted from 1


def holds(constraint: Sequence, placed: dict[str, Slot]) -> bool:
    """Whether one constraint holds for the meetings it names; a meeting that is not placed breaks it."""
    kind, first, second = constraint
    if first not in placed or (kind in ("before", "same_day", "apart") and second not in placed):
        return False
    day, slot = placed[first]
    if kind == "on_day":
        return day == second
    if kind == "not_slot":
        return slot != second
    other = placed[second]
    if kind == "before":
        return (day, slot) < other
    if kind == "same_day":
        return day == other[0]
    if kind == "apart":
        return day != other[0]
    raise ValueError(f"unknown schedule constraint {kind!r}; known: {', '.join(KINDS)}")


def well_placed(schedule: dict, placed: dict[str, Slot]) -> dict[str, bool]:
    """For each meeting: placed, on an existing day and slot, and alone in it."""
    taken: dict[Slot, int] = {}
    for where in placed.values():
        taken[where] = taken.get(where, 0) + 1
    return {
        name: name in placed
        and 1 <= placed[name][0] <= schedule["days"]
        and 1 <= placed[name][1] <= schedule["slots"]
        and taken[placed[name]] == 1
        for name in schedule["meetings"]
    }


def read_schedule(text: str, meetings: Sequence[str]) -> dict[str, tuple[int, Slot]]:
    """Meeting -> (offset of its line, (day, slot)) from lines such as "Amber Falcon: Day 2, slot 3"; the
    first line naming a meeting counts."""
    names = sorted(meetings, key=len, reverse=True)  # "Red Fox Two" before "Red Fox"
    pattern = re.compile(
        r"^[\s*#>-]*("
        + "|".join(map(re.escape, names))
        + r")\b\W*?\s*[:\-–—]\s*\**\s*day\s*(\d+)\W+slot\s*(\d+)",
        re.IGNORECASE,
    )
    canonical = {name.lower(): name for name in meetings}
    found: dict[str, tuple[int, Slot]] = {}
    for offset, line in lines_with_offsets(text):
        match = pattern.match(line)
        if match:
            name = canonical[match.group(1).lower()]
            if name not in found:
                found[name] = (
                    offset + len(line) - len(line.lstrip()),
                    (int(match.group(2)), int(match.group(3))),
                )
    return found


def checks(schedule: dict, placed: dict[str, Slot]) -> list[tuple[str, bool]]:
    """Every check the validator makes, in order, each with the meeting whose line it concerns: one per
    meeting (placed, in range, alone in its slot), then one per stated constraint."""
    placement = well_placed(schedule, placed)
    result = [(name, placement[name]) for name in schedule["meetings"]]
    result += [(constraint[1], holds(constraint, placed)) for constraint in schedule["constraints"]]
    return result


@SCORERS.register("schedule_constraints")
def schedule_constraints(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict]:
    """Share of the validator's checks the written schedule passes (``meta["schedule"]``: days, slots,
    meetings and constraints). Any schedule that passes them all scores 1, not only the generator's own.
    Details: ``valid`` (1 when every check passes) and ``item_positions`` (per check, the line of the
    meeting it concerns)."""
    schedule = meta["schedule"]
    read = read_schedule(prediction, schedule["meetings"])
    placed = {name: where for name, (_, where) in read.items()}
    results = checks(schedule, placed)
    entries = [
        (relative(read[name][0] if name in read else None, prediction), float(ok)) for name, ok in results
    ]
    passed = sum(ok for _, ok in results)
    return passed / len(results), {
        "valid": float(passed == len(results)),
        "item_positions": item_positions(entries),
    }

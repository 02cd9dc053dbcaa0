"""Procedure execution: every intermediate state a response writes against the gold states (state accuracy)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.positions import item_positions, lines_with_offsets, relative

# "State 3: A=4, B=-2", "**State 3** - A = 4; B = -2"
_STATE_LINE = re.compile(r"^[\s*#>-]*state\s*(\d+)\s*\**\s*[:.)=-]\s*(.*)$", re.IGNORECASE)
_BINDING = re.compile(r"\b([A-Za-z]\w*)\s*=\s*(-?\d+)\b")


def written_states(text: str) -> dict[int, tuple[int, dict[str, int]]]:
    """State number -> (offset of its line, the variable values it writes); the first line per number counts."""
    states: dict[int, tuple[int, dict[str, int]]] = {}
    for offset, line in lines_with_offsets(text):
        match = _STATE_LINE.match(line)
        if match and int(match.group(1)) not in states:
            values = {name.upper(): int(value) for name, value in _BINDING.findall(match.group(2))}
            states[int(match.group(1))] = (offset + len(line) - len(line.lstrip()), values)
    return states


@SCORERS.register("procedure_states")
def procedure_states(prediction: str, answers: Sequence[str]) -> tuple[float, dict]:
    """Share of the gold states ("State k: A=.., B=..") the prediction writes exactly: every variable with
    its value, and no other. Details: ``item_positions``, one entry per gold state."""
    gold = written_states("\n".join(answers))
    if not gold:
        raise ValueError("procedure_states needs gold answers written as 'State k: A=1, B=2' lines")
    given = written_states(prediction)
    entries = []
    for number, (_, want) in gold.items():
        offset, values = given.get(number, (None, {}))
        entries.append((relative(offset, prediction), float(offset is not None and values == want)))
    return sum(score for _, score in entries) / len(gold), {"item_positions": item_positions(entries)}

"""Packed questions: many numbered answers in one response, each scored alone and placed in the output."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.numeric import first_number
from longscope.scoring.positions import item_positions, lines_with_offsets, relative

# A line that answers question N: "3: 69", "3. 69", "Answer 3: 69", "**3)** 69", "Q3 - 69"; the number opens
# the line (after list or emphasis marks).
_ANSWER_LINE = re.compile(
    r"^[\s*#>-]*(?:(?:answer|question|q)\s*)?(\d+)\s*\**\s*[:.)=-]\s*\**\s*(.*?)\s*$", re.IGNORECASE
)


def numbered_answers(text: str) -> dict[int, tuple[int, str]]:
    """Question number -> (character offset of its line, the answer written); the first line per number
    counts, as a marker reading top to bottom would take it."""
    found: dict[int, tuple[int, str]] = {}
    for offset, line in lines_with_offsets(text):
        match = _ANSWER_LINE.match(line)
        if match and int(match.group(1)) not in found:
            found[int(match.group(1))] = (offset + len(line) - len(line.lstrip()), match.group(2))
    return found


def _right(given: str, want: str) -> bool:
    # Gold answers are integers: the first number written on the line must be that integer.
    got, gold = first_number(given), first_number(want)
    return got is not None and gold is not None and got == gold


@SCORERS.register("packed_answers")
def packed_answers(prediction: str, answers: Sequence[str]) -> tuple[float, dict]:
    """Share of the gold "N: value" answers whose line "N: ..." in the prediction starts with that number.

    Details: ``answered`` (share of asked numbers given a line at all), ``item_ids`` (the question numbers, in
    the gold order) and ``item_positions`` (for each, where its line starts in the output, and 0 or 1).
    """
    gold = {number: value for number, (_, value) in numbered_answers("\n".join(answers)).items()}
    if not gold:
        raise ValueError("packed_answers needs gold answers written as 'N: value' lines")
    given = numbered_answers(prediction)
    entries, right = [], 0
    for number, want in gold.items():
        offset, text = given.get(number, (None, ""))
        correct = offset is not None and _right(text, want)
        right += correct
        entries.append((relative(offset, prediction), float(correct)))
    return right / len(gold), {
        "answered": sum(number in given for number in gold) / len(gold),
        "item_ids": json.dumps(list(gold)),
        "item_positions": item_positions(entries),
    }

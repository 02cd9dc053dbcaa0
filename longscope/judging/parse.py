"""Reading a judge's reply into one grade per checklist item: lenient where the reply is unambiguous, refused
(with the reason) where it is not, so that no judgement is ever scored by guessing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from longscope.judging.prompts import GRADES


class MalformedReply(ValueError):
    """A reply that cannot be read as one grade per item; the message says what is wrong, for the retry."""


@dataclass(frozen=True)
class ParsedReply:
    """One grade per item in [0, 1] on the quarter steps, and what leniency was needed to read them."""

    grades: tuple[float, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. "item 2: 0.8 read as 0.75"

    @property
    def score(self) -> float:
        return sum(self.grades) / len(self.grades)


# "3: 0.75 - reason", "Item 3 - 3/4", "**3.** 0.5", "3) score: 1", "#3 = 75%"
_LINE = re.compile(
    r"^[\s>*#\-]*(?:item|checklist(?:\s+item)?)?\s*#?\s*(\d+)\s*\**\s*[:.)=\-]\s*\**\s*"
    r"(?:grade|score|evaluation[ _]score)?\s*[:=]?\s*\**\s*"
    r"(-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?|-?\.\d+)",
    re.IGNORECASE,
)


def parse_reply(reply: str, count: int) -> ParsedReply:
    """The ``count`` grades a reply gives, from numbered lines (``2: 0.75 - reason``) or a JSON list of
    objects holding an id and a score (HelloBench's judges answer so). Prose around them is ignored. Raises
    MalformedReply for a missing or repeated item, an item number outside 1..count, or a grade outside [0, 1]."""
    found = _from_json(reply)
    if found is None:
        found = _from_lines(reply)
    if not found:
        raise MalformedReply(f"no graded items found; expected {count} lines such as '1: 0.75 - reason'")
    by_item: dict[int, str] = {}
    for number, raw in found:
        if number in by_item and _value(by_item[number]) != _value(raw):
            raise MalformedReply(f"item {number} is graded twice, {by_item[number]} and {raw}")
        by_item[number] = raw
    outside = sorted(n for n in by_item if not 1 <= n <= count)
    if outside:
        raise MalformedReply(f"item {outside[0]} does not exist; there are {count} items")
    missing = [n for n in range(1, count + 1) if n not in by_item]
    if missing:
        raise MalformedReply(f"item{'s' if len(missing) > 1 else ''} {_listed(missing)} not graded")
    grades, notes = [], []
    for number in range(1, count + 1):
        raw = by_item[number]
        value = _value(raw)
        if value is None or not 0.0 <= value <= 1.0:
            raise MalformedReply(f"item {number}: grade {raw} is outside 0-1")
        snapped = min(GRADES, key=lambda grade: abs(grade - value))
        if abs(snapped - value) > 1e-9:
            notes.append(f"item {number}: {raw} read as {snapped:g}")
        grades.append(snapped)
    return ParsedReply(tuple(grades), tuple(notes))


def _value(raw: str) -> float | None:
    """``0.75``, ``.5``, ``3/4`` or ``75%`` as a number; None when it cannot be read."""
    text = raw.replace(" ", "")
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0
        if "/" in text:
            top, bottom = text.split("/")
            return float(top) / float(bottom) if float(bottom) else None
        return float(text)
    except ValueError:
        return None


def _from_lines(reply: str) -> list[tuple[int, str]]:
    found = []
    for line in reply.splitlines():
        match = _LINE.match(line)
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return found


def _from_json(reply: str) -> list[tuple[int, str]] | None:
    """Grades from a JSON list of objects (in a code fence or bare); ids counted from 0 when one is 0.
    None when the reply holds no such list."""
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        loaded = json.loads(reply[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(loaded, list) or not loaded or not all(isinstance(x, dict) for x in loaded):
        return None
    pairs = []
    for position, entry in enumerate(loaded, start=1):
        ident = next((entry[k] for k in ("checklist_id", "item", "id") if k in entry), position)
        score = next((entry[k] for k in ("evaluation_score", "grade", "score") if k in entry), None)
        if score is None:
            raise MalformedReply(f"entry {position} of the JSON list has no score")
        try:
            number = int(ident)
        except (TypeError, ValueError):
            raise MalformedReply(
                f"entry {position} of the JSON list has id {ident!r}, not a number"
            ) from None
        pairs.append((number, str(score).strip()))
    if any(number == 0 for number, _ in pairs):  # HelloBench numbers its items from 0
        pairs = [(number + 1, score) for number, score in pairs]
    return pairs


def _listed(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)

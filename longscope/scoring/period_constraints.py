"""Constrained long writing: a diary or plan cut into its periods, each required event checked in its period."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.positions import item_positions, lines_with_offsets, relative


def segments(text: str, unit: str) -> dict[int, tuple[int, str]]:
    """Period number -> (offset where its header starts, its text up to the next header) for headers such
    as "Day 3:", "## Week 3", "**Day 3** -" at the start of a line. The first header per number counts; a
    repeated one ends the segment before it like any other header."""
    header = re.compile(rf"^[\s#*>-]*{re.escape(unit)}\s+(\d+)\b", re.IGNORECASE)
    starts = []
    for offset, line in lines_with_offsets(text):
        match = header.match(line)
        if match:
            starts.append((offset + len(line) - len(line.lstrip()), int(match.group(1))))
    found: dict[int, tuple[int, str]] = {}
    for i, (start, number) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        found.setdefault(number, (start, text[start:end]))
    return found


def _mention(segment: tuple[int, str] | None, event: str) -> int | None:
    if segment is None:
        return None
    at = segment[1].lower().find(event.lower())
    return None if at < 0 else segment[0] + at


def constraint_checks(text: str, unit: str, constraint: dict) -> list[tuple[int | None, bool]]:
    """The checks of one constraint, each with the offset it is placed at: a ``once`` event is mentioned in
    its period and in no other (one check); a ``range`` or ``periodic`` event is mentioned in each of its
    periods (one check per period). A check's offset is the mention's, else its period's header's when the
    period was written, else None."""
    cut = segments(text, unit)
    result = []
    for period in constraint["periods"]:
        segment = cut.get(period)
        at = _mention(segment, constraint["event"])
        ok = at is not None
        if constraint["kind"] == "once":
            ok = ok and all(
                _mention(other, constraint["event"]) is None for p, other in cut.items() if p != period
            )
        result.append((at if at is not None else (segment[0] if segment else None), ok))
    return result


@SCORERS.register("period_constraints")
def period_constraints(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict]:
    """Share of the period checks the writing passes (``meta["constraints"]``, headers ``meta["unit"]``).
    Details: ``periods_written`` (share of the asked periods with a header) and ``item_positions``."""
    unit, entries = meta["unit"], []
    for constraint in meta["constraints"]:
        entries += [
            (relative(at, prediction), float(ok))
            for at, ok in constraint_checks(prediction, unit, constraint)
        ]
    written = segments(prediction, unit)
    periods = int(meta["periods"])
    return sum(ok for _, ok in entries) / len(entries), {
        "periods_written": sum(1 for p in range(1, periods + 1) if p in written) / periods,
        "item_positions": item_positions(entries),
    }

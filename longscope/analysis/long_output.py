"""The long-output numbers of a run: produced against required length, accuracy by position in the answer, the
drop from packing questions into one answer, and each generation method's score against its tokens and calls."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from longscope.analysis.intervals import DEFAULT_LEVEL, Interval, wilson
from longscope.analysis.paired import Pair, PairedDifference, paired_difference
from longscope.core import Result

FAMILY = "long_output"
PACKED_LABEL = "packed"
SEPARATE_LABEL = "one at a time"
# The three named stretches of an answer: the first and last tenth, and the tenth around its middle.
NAMED_BINS = (("first tenth", 0.0, 0.1), ("middle tenth", 0.45, 0.55), ("last tenth", 0.9, 1.0))
# `one_at_a_time=True` inside a task label, with the comma that joins it to the other parameters.
_SEPARATE_PARAM = re.compile(r",?\bone_at_a_time=True\b,?")


def details_of(row: Result) -> dict[str, Any]:
    try:
        parsed = json.loads(row.details) if row.details else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _json_list(value: Any) -> list:
    """A detail stored either as a list or as the JSON text of one (scorers' details are flat)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return []
    return value if isinstance(value, list) else []


def item_positions(row: Result) -> list[tuple[float | None, float]]:
    """The row's ``[position 0..1 or None, score 0..1]`` per item, as its scorer placed them."""
    out = []
    for entry in _json_list(details_of(row).get("item_positions")):
        if isinstance(entry, list) and len(entry) == 2 and entry[1] is not None:
            position = None if entry[0] is None else min(1.0, max(0.0, float(entry[0])))
            out.append((position, float(entry[1])))
    return out


def is_long_output(row: Result, metadata: dict[str, dict[str, Any]]) -> bool:
    return metadata.get(row.sample_id, {}).get("family") == FAMILY


def long_output_rows(results: Iterable[Result], metadata: dict[str, dict[str, Any]]) -> list[Result]:
    """The run's long-output rows that ran (answered or failed; skipped rows have no output)."""
    return [r for r in results if r.status in ("ok", "failed") and is_long_output(r, metadata)]


# -- produced against required length ---------------------------------------------------------------------


@dataclass(frozen=True)
class LengthPoint:
    method: str
    task: str
    sample_id: str
    required: float
    produced: float
    unit: str  # "words", or "chars" for Chinese prompts
    score: float | None  # 0-100


def length_points(rows: Iterable[Result]) -> list[LengthPoint]:
    points = []
    for row in rows:
        details = details_of(row)
        required, produced = details.get("required_words"), details.get("produced_words")
        if row.status != "ok" or required is None or produced is None:
            continue
        score = None if row.score is None else 100.0 * row.score
        unit = "chars" if details.get("length_unit") == "chars" else "words"
        points.append(LengthPoint(row.method, row.task, row.sample_id, float(required), float(produced), unit,
                                  score))  # fmt: skip
    return points


# -- accuracy by position in the answer ----------------------------------------------------------------------


@dataclass(frozen=True)
class PositionBin:
    """Items whose answer starts in [start, end) of the output (the last bin includes 1.0): their mean score
    (0-100), n, and Wilson's interval on the item scores' sum (exact for pass/fail items)."""

    method: str
    name: str
    start: float
    end: float
    n: int
    mean: float | None
    interval: Interval

    @property
    def low(self) -> float | None:
        return self.interval.low

    @property
    def high(self) -> float | None:
        return self.interval.high


@dataclass(frozen=True)
class Positions:
    """One method's items by position: the ten tenths of the answer, the three named stretches, and how many
    items had no position (their answer was not found in the output: they score 0 and sit nowhere)."""

    method: str
    tenths: list[PositionBin]
    named: list[PositionBin]
    unplaced: int
    unplaced_mean: float | None


def _in(position: float, start: float, end: float) -> bool:
    return start <= position < end or (end == 1.0 and position == 1.0)


def _bin(method: str, name: str, start: float, end: float, scores: list[float], level: float) -> PositionBin:
    if not scores:
        return PositionBin(method, name, start, end, 0, None, Interval(None, None, "none", "no items here"))
    low, high = wilson(sum(scores), len(scores), level)
    return PositionBin(method, name, start, end, len(scores), 100.0 * sum(scores) / len(scores),
                       Interval(100.0 * low, 100.0 * high, "wilson"))  # fmt: skip


def positions(rows: Iterable[Result], level: float = DEFAULT_LEVEL) -> list[Positions]:
    by_method: dict[str, list[tuple[float | None, float]]] = {}
    for row in rows:
        if row.status == "ok":
            items = item_positions(row)
            if items:
                by_method.setdefault(row.method, []).extend(items)
    out = []
    for method, items in by_method.items():
        placed = [(p, s) for p, s in items if p is not None]
        unplaced = [s for p, s in items if p is None]

        def scores_in(start: float, end: float, placed=placed) -> list[float]:
            return [s for p, s in placed if _in(p, start, end)]

        tenths = [_bin(method, f"{i}0-{i + 1}0%", i / 10, (i + 1) / 10, scores_in(i / 10, (i + 1) / 10), level)
                  for i in range(10)]  # fmt: skip
        named = [_bin(method, name, a, b, scores_in(a, b), level) for name, a, b in NAMED_BINS]
        unplaced_mean = 100.0 * sum(unplaced) / len(unplaced) if unplaced else None
        out.append(Positions(method, tenths, named, len(unplaced), unplaced_mean))
    return out


# -- the packing drop ----------------------------------------------------------------------------------------


def unpacked_label(task: str) -> str:
    """The task label with ``one_at_a_time=True`` taken out: what a packed run and its separate twin share."""
    label = _SEPARATE_PARAM.sub(",", task).replace("(,", "(").replace(",)", ")").replace("()", "")
    return label.rstrip(",")


def _item_ids(row: Result, metadata: dict[str, dict[str, Any]]) -> list[Hashable]:
    ids = _json_list(details_of(row).get("item_ids"))
    if not ids:
        ids = _json_list(metadata.get(row.sample_id, {}).get("item_ids"))
    return [json.dumps(i) if isinstance(i, list | dict) else i for i in ids]


@dataclass(frozen=True)
class PackingDrop:
    """Per method: the same questions answered all in one response against one per response, paired per
    question. ``difference`` is packed − one at a time in points (negative: packing costs accuracy)."""

    method: str
    difference: PairedDifference
    packed_mean: float | None
    separate_mean: float | None
    questions: list[int] = field(default_factory=list)  # the K of each packed sample paired


def packing_drops(
    rows: Iterable[Result], metadata: dict[str, dict[str, Any]], level: float = DEFAULT_LEVEL
) -> list[PackingDrop]:
    """Pairs each question of a packed sample with the same question asked alone, matched by method, task
    (less ``one_at_a_time``), length, seed and the question's id (the scorer's ``item_ids``). Questions of one
    packed answer are resampled together in the interval, since they share one response."""
    packed: dict[tuple, tuple[float, str]] = {}
    separate: dict[tuple, float] = {}
    sizes: dict[tuple[str, str], int] = {}
    for row in rows:
        meta = metadata.get(row.sample_id, {})
        if row.status != "ok" or "packed" not in meta:
            continue
        ids = _item_ids(row, metadata)
        scores = [s for _, s in item_positions(row)]
        if not ids or len(ids) != len(scores):
            continue
        base = (row.method, unpacked_label(row.task), row.length, row.seed)
        if meta["packed"]:
            sizes[(row.method, row.sample_id)] = len(ids)
            for item, score in zip(ids, scores, strict=True):
                packed[(*base, item)] = (100.0 * score, row.sample_id)
        else:
            for item, score in zip(ids, scores, strict=True):
                separate[(*base, item)] = 100.0 * score
    drops = []
    for method in sorted({key[0] for key in packed}):
        pairs = [Pair(reference=separate[key], other=value, context=context)
                 for key, (value, context) in packed.items() if key[0] == method and key in separate]  # fmt: skip
        if not pairs:
            continue
        difference = paired_difference(pairs, other=PACKED_LABEL, reference=SEPARATE_LABEL, level=level)
        drops.append(
            PackingDrop(
                method=method,
                difference=difference,
                packed_mean=sum(p.other for p in pairs) / len(pairs),
                separate_mean=sum(p.reference for p in pairs) / len(pairs),
                questions=sorted({k for (m, _), k in sizes.items() if m == method}),
            )
        )
    return drops


# -- generation methods side by side -------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodCost:
    """One method over the long-output rows: mean score (0-100) with n, and what its answers cost in total."""

    method: str
    n: int
    failed: int
    mean: float | None
    input_tokens: int
    output_tokens: int
    calls: int
    mean_output_words: float | None
    mean_repetition: float | None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def method_costs(rows: Iterable[Result]) -> list[MethodCost]:
    by_method: dict[str, list[Result]] = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    out = []
    for method, group in by_method.items():
        scored = [100.0 * r.score for r in group if r.status == "ok" and r.score is not None]
        ok = [r for r in group if r.status == "ok"]
        words = [float(r.output_words) for r in ok if r.output_words is not None]
        repeats = [r.repetition for r in ok if r.repetition is not None and not math.isnan(r.repetition)]
        out.append(
            MethodCost(
                method=method,
                n=len(scored),
                failed=sum(r.status == "failed" for r in group),
                mean=_mean(scored),
                input_tokens=sum(r.input_tokens or 0 for r in ok),
                output_tokens=sum(r.output_tokens or 0 for r in ok),
                calls=sum(r.calls or 1 for r in ok),
                mean_output_words=_mean(words),
                mean_repetition=_mean(repeats),
            )
        )
    return out


# -- everything together -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LongOutput:
    lengths: list[LengthPoint]
    positions: list[Positions]
    packing: list[PackingDrop]
    methods: list[MethodCost]


def long_output(
    results: Iterable[Result], metadata: dict[str, dict[str, Any]], level: float = DEFAULT_LEVEL
) -> LongOutput | None:
    """The long-output analyses of a run, or None when it has no long-output rows."""
    rows = long_output_rows(results, metadata)
    if not rows:
        return None
    return LongOutput(length_points(rows), positions(rows, level), packing_drops(rows, metadata, level),
                      method_costs(rows))  # fmt: skip


def summary_lines(analysis: LongOutput) -> list[str]:
    """The long-output figures in a few lines for the terminal, after the score tables."""
    lines = ["Long outputs:"]
    for m in analysis.methods:
        words = "—" if m.mean_output_words is None else f"{m.mean_output_words:.0f}"
        repeats = "—" if m.mean_repetition is None else f"{100 * m.mean_repetition:.1f}%"
        score = "—" if m.mean is None else f"{m.mean:.1f}"
        lines.append(
            f"  {m.method}: score {score} (n={m.n}), {m.calls} calls, {m.input_tokens:,} input and "
            f"{m.output_tokens:,} output tokens, {words} words per answer, {repeats} repeated 4-grams"
        )
    for group in analysis.positions:
        cells = ", ".join(
            f"{b.name} {'—' if b.mean is None else f'{b.mean:.1f}'} (n={b.n})" for b in group.named
        )
        lines.append(f"  by position, {group.method}: {cells}; {group.unplaced} items not found")
    for drop in analysis.packing:
        lines.append(f"  packing, {drop.method}: {drop.difference.sentence()}")
    if analysis.lengths:
        ratios = sorted(p.produced / p.required for p in analysis.lengths if p.required > 0)
        if ratios:
            lines.append(
                f"  length following: produced/required median {ratios[len(ratios) // 2]:.2f} over "
                f"{len(ratios)} answers (min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
            )
    return lines

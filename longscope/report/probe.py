"""The report's loss-by-position section: the probe's NLL-by-position curves beside the score–length curves of
the same run, per method, and where the two disagree (a method whose NLL holds while its score falls)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from longscope.core import UsageError
from longscope.probe import PROBE_FILE
from longscope.report import figures
from longscope.report import format as fmt
from longscope.report.load import RunData

# A drop of 10 points is about the paired interval of the quick suite at one length (config.py): smaller
# changes are not read as a fall. 0.1 nats is a 10% change in perplexity.
SCORE_DROP = 10.0
NLL_RISE = 0.1
# The far end of a reading: the last quarter of its positions, where a task's needle placed late must be read.
TAIL = 0.75


@dataclass(frozen=True)
class Point:
    """One method at one length: its task score (0-100, over ``n`` scored rows) and the probe's mean NLL over
    the last quarter of that length's positions, taken from a reading at least that long (``read_at``)."""

    length: int
    score: float | None
    n: int
    tail_nll: float | None
    read_at: int | None


@dataclass(frozen=True)
class Comparison:
    method: str
    points: list[Point]

    def verdict(self) -> tuple[str, bool]:
        """One sentence on whether NLL and score move together from the shortest to the longest length where
        both were measured, and whether they disagree."""
        both = [p for p in self.points if p.score is not None and p.tail_nll is not None]
        if len(both) < 2:
            return "measured at fewer than two lengths with both a score and the probe", False
        first, last = both[0], both[-1]
        drop = first.score - last.score
        rise = last.tail_nll - first.tail_nll
        span = f"from {fmt.length(first.length)} to {fmt.length(last.length)}"
        change = f"score {first.score:.1f} → {last.score:.1f}, far-end NLL {first.tail_nll:.3f} → {last.tail_nll:.3f}"
        if first.score == last.score and last.score in (0.0, 100.0):
            # A score pinned at the floor or the ceiling cannot fall or hold in a way NLL could contradict.
            return f"no contrast: the score is {last.score:.0f} at both ends {span} ({change})", False
        if drop >= SCORE_DROP and rise < NLL_RISE:
            return f"disagree: NLL holds while the score falls {drop:.1f} points {span} ({change})", True
        if drop < SCORE_DROP and rise >= NLL_RISE:
            return f"disagree: NLL rises {rise:.3f} nats while the score holds {span} ({change})", True
        both_move = "both worsen" if drop >= SCORE_DROP else "both hold"
        return f"agree: {both_move} {span} ({change})", False


def read_probe(run_dir: Path) -> dict[str, Any] | None:
    """The probe file in a run directory, or None when there is none; a damaged one is one clear line."""
    path = Path(run_dir) / PROBE_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
        curves = payload["curves"]
        for curve in curves:
            curve["method"], curve["length"], curve["bin_tokens"], curve["nll"], curve["tokens"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} is not a probe file ({type(exc).__name__}: {exc}); write it again with "
            f"`longscope probe ppl --out {run_dir}`"
        ) from None
    return payload


def tail_nll(curve: dict[str, Any], length: int) -> float | None:
    """Mean NLL of positions [TAIL·length, length) from a curve read at ``length`` or longer: the probe reads
    causally, so a longer reading's first ``length`` positions are that length's reading."""
    bin_tokens, start = int(curve["bin_tokens"]), TAIL * length
    total = weight = 0.0
    for k, (nll, tokens) in enumerate(zip(curve["nll"], curve["tokens"], strict=True)):
        low, high = k * bin_tokens, (k + 1) * bin_tokens
        if high <= start or low >= length or not tokens or nll is None or math.isnan(nll):
            continue
        total, weight = total + nll * tokens, weight + tokens
    return total / weight if weight else None


def compare(data: RunData, payload: dict[str, Any]) -> list[Comparison]:
    """Per method the probe measured: score and far-end NLL at every length of either."""
    scores: dict[str, dict[int, list[float]]] = {}
    for row in data.results:
        if row.status == "ok" and row.score is not None:
            scores.setdefault(row.method, {}).setdefault(row.length, []).append(100.0 * float(row.score))
    curves: dict[str, list[dict[str, Any]]] = {}
    for curve in payload["curves"]:
        curves.setdefault(curve["method"], []).append(curve)
    out = []
    for method in sorted(curves):
        mine = sorted(curves[method], key=lambda c: c["length"])
        by_length = scores.get(method, {})
        lengths = sorted({c["length"] for c in mine} | set(by_length))
        points = []
        for length in lengths:
            reading = next((c for c in mine if c["length"] >= length), None)
            values = by_length.get(length, [])
            points.append(
                Point(
                    length=length,
                    score=sum(values) / len(values) if values else None,
                    n=len(values),
                    tail_nll=tail_nll(reading, length) if reading else None,
                    read_at=reading["length"] if reading else None,
                )
            )
        out.append(Comparison(method, points))
    return out


def plot(payload: dict[str, Any], comparisons: list[Comparison]) -> figures.Plot:
    figure = Figure(figsize=(10.0, 3.9), layout="constrained")
    nll_axis, score_axis = figure.subplots(1, 2)
    trained = payload.get("trained_window")
    colours = dict(zip([c.method for c in comparisons], figures._palette(len(comparisons)), strict=True))
    for curve in payload["curves"]:
        longest = max(c["length"] for c in payload["curves"] if c["method"] == curve["method"])
        if curve["length"] != longest:  # shorter readings are prefixes of the longest one
            continue
        shown = [(k, v) for k, v in enumerate(curve["nll"]) if v is not None and not math.isnan(v)]
        centres = [(k + 0.5) * curve["bin_tokens"] for k, _ in shown]
        nll_axis.plot(centres, [v for _, v in shown], color=colours[curve["method"]], linewidth=1.4,
                      label=figures.plain(curve["method"]))  # fmt: skip
    nll_axis.set_xlabel("position (tokens)")
    nll_axis.set_ylabel("mean NLL (nats)")
    nll_axis.set_title("loss by position", fontsize=10)
    lengths: set[int] = set()
    for comparison in comparisons:
        scored = [p for p in comparison.points if p.score is not None]
        lengths |= {p.length for p in scored}
        if scored:
            score_axis.plot([p.length for p in scored], [p.score for p in scored], marker="o",
                            color=colours[comparison.method], label=figures.plain(comparison.method))  # fmt: skip
    if lengths:
        figures._length_axis(score_axis, sorted(lengths))
    score_axis.set_ylim(-3, 103)
    score_axis.set_ylabel("task score (0-100)")
    score_axis.set_title("score by length", fontsize=10)
    for axis in (nll_axis, score_axis):
        if trained:
            axis.axvline(trained, color=figures.GREY, linestyle="--", label="trained window")
        axis.grid(alpha=0.3)
    nll_axis.legend(fontsize=7, frameon=False)
    return figures.Plot(
        "fig-probe",
        "Loss by position beside score by length",
        "Left: the probe's mean token NLL over the built-in essays in each bin of positions, each method's longest "
        "reading (a shorter one is its prefix). Right: each method's mean task score at each length of this "
        "run. The dashed line is the model's trained window.",
        figures._png(figure),
        "NLL against position and score against length, one line per method",
    )


def section(data: RunData) -> dict[str, Any] | None:
    """What the page shows, or None when the run directory holds no probe file."""
    payload = read_probe(data.run_dir)
    if payload is None or not payload["curves"]:
        return None
    comparisons = compare(data, payload)
    lengths = sorted({p.length for c in comparisons for p in c.points})
    rows = []
    for comparison in comparisons:
        sentence, disagree = comparison.verdict()
        by_length = {p.length: p for p in comparison.points}
        cells = []
        for length in lengths:
            point = by_length.get(length)
            score = "–" if point is None or point.score is None else f"{point.score:.1f} (n={point.n})"
            nll = "–" if point is None or point.tail_nll is None else f"{point.tail_nll:.3f}"
            cells.append({"score": score, "nll": nll})
        rows.append({"method": comparison.method, "cells": cells, "verdict": sentence, "disagree": disagree})
    return {
        "plot": plot(payload, comparisons),
        "model": payload.get("model"),
        "same_model": _same_model(data, payload.get("model")),
        "trained_window": payload.get("trained_window"),
        "bos": any(c.get("bos") for c in payload["curves"]),
        "headers": [fmt.length(n) for n in lengths],
        "rows": rows,
        "score_drop": f"{SCORE_DROP:g}",
        "nll_rise": f"{NLL_RISE:g}",
    }


def _same_model(data: RunData, probed: str | None) -> bool:
    ran = {row.model for row in data.results}
    return probed is None or not ran or probed in ran


def summary(data: RunData) -> dict[str, Any] | None:
    """The summary.json entry: the curves as the probe wrote them and, per method, the points and verdict."""
    payload = read_probe(data.run_dir)
    if payload is None:
        return None
    entries = []
    for comparison in compare(data, payload):
        sentence, disagree = comparison.verdict()
        points = [vars(p) for p in comparison.points]
        entries.append(
            {"method": comparison.method, "points": points, "verdict": sentence, "disagree": disagree}
        )
    return {
        "file": PROBE_FILE,
        "model": payload.get("model"),
        "curves": payload["curves"],
        "methods": entries,
    }

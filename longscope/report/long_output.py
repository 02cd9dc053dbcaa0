"""The report's long-output section: produced against required length, accuracy by position in the answer, the
packing drop and the generation methods side by side, as figures, tables and the summary.json entry."""

from __future__ import annotations

import dataclasses
from typing import Any

from matplotlib.figure import Figure

from longscope.analysis.long_output import LongOutput, Positions, long_output
from longscope.report import figures
from longscope.report import format as fmt
from longscope.report.load import RunData


def length_plot(analysis: LongOutput) -> figures.Plot | None:
    points = analysis.lengths
    if not points:
        return None
    figure = Figure(figsize=(5.2, 4.2), layout="constrained")
    axis = figure.subplots()
    methods = sorted({p.method for p in points})
    for colour, method in zip(figures._palette(len(methods)), methods, strict=True):
        mine = [p for p in points if p.method == method]
        axis.scatter([p.required for p in mine], [max(p.produced, 1.0) for p in mine], color=colour, s=30,
                     label=figures.plain(method), edgecolors="black", linewidths=0.4, zorder=3)  # fmt: skip
    low = min(min(p.required for p in points), max(1.0, min(p.produced for p in points)))
    high = max(max(p.required for p in points), max(p.produced for p in points))
    axis.plot(
        [low, high], [low, high], color=figures.GREY, linestyle="--", label="produced = required", zorder=1
    )
    axis.set_xscale("log")
    axis.set_yscale("log")
    units = sorted({p.unit for p in points})
    unit = " or ".join(units)
    axis.set_xlabel(f"required length ({unit})")
    axis.set_ylabel(f"produced length ({unit})")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8, frameon=False)
    return figures.Plot(
        "fig-long-output-length",
        "Produced against required length",
        "Each length-following answer's length against the length its instruction asked for, on log axes; on "
        "the dashed line the model wrote exactly what was asked (an empty answer is drawn at 1).",
        figures._png(figure),
        "scatter of produced against required length on log axes",
    )


def position_plot(positions: list[Positions]) -> figures.Plot | None:
    if not any(b.n for p in positions for b in p.tenths):
        return None
    figure = Figure(figsize=(6.0, 3.6), layout="constrained")
    axis = figure.subplots()
    for colour, group in zip(figures._palette(len(positions)), positions, strict=True):
        shown = [b for b in group.tenths if b.n]
        centres = [(b.start + b.end) / 2 for b in shown]
        means = [b.mean for b in shown]
        errors = [[b.mean - b.low for b in shown], [b.high - b.mean for b in shown]]
        axis.errorbar(centres, means, yerr=errors, color=colour, marker="o", capsize=3,
                      label=figures.plain(group.method))  # fmt: skip
    axis.set_xlim(0, 1)
    axis.set_ylim(-3, 103)
    axis.set_xticks([i / 10 for i in range(11)])
    axis.set_xlabel("where the item's answer starts in the output (share of its characters)")
    axis.set_ylabel("item accuracy (0-100)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, frameon=False)
    return figures.Plot(
        "fig-long-output-position",
        "Accuracy by position in the answer",
        "Mean item score in each tenth of the output, with Wilson 95% intervals; items whose answer was not "
        "found have no position and are counted apart in the table.",
        figures._png(figure),
        "item accuracy against position in the output, one line per method",
    )


# Items of one answer are not independent trials (they share the response), so the rule is named as it is.
ITEM_WILSON = (
    "Wilson score interval over the items in the bin, each item counted as one trial (items of one answer share "
    "it, so the interval is narrower than a by-answer one would be)"
)


def _bin_cell(bin_, legend: fmt.Legend) -> dict[str, Any]:
    return {"mean": fmt.score(bin_.mean), **legend.cell(bin_.interval, ITEM_WILSON), "n": bin_.n}


def section(data: RunData, level: float = 0.95) -> dict[str, Any] | None:
    """What the page shows, or None when the run has no long-output rows."""
    analysis = long_output(data.results, data.metadata, level)
    if analysis is None:
        return None
    legend = fmt.Legend(level)
    position_rows = [
        {
            "method": group.method,
            "cells": [_bin_cell(b, legend) for b in group.named],
            "unplaced": group.unplaced,
            "unplaced_mean": fmt.score(group.unplaced_mean),
        }
        for group in analysis.positions
    ]
    return {
        "length_plot": length_plot(analysis),
        "lengths": len(analysis.lengths),
        "position_plot": position_plot(analysis.positions),
        "position_headers": [b.name for b in analysis.positions[0].named] if analysis.positions else [],
        "positions": position_rows,
        "legend": legend.entries,
        "packing": [
            {
                "method": drop.method,
                "packed": fmt.score(drop.packed_mean),
                "separate": fmt.score(drop.separate_mean),
                "questions": ", ".join(str(k) for k in drop.questions),
                "sentence": drop.difference.sentence(),
                "significant": drop.difference.significant,
            }
            for drop in analysis.packing
        ],
        "methods": [
            {
                "method": m.method,
                "score": fmt.score(m.mean),
                "n": m.n,
                "failed": m.failed,
                "input_tokens": f"{m.input_tokens:,}",
                "output_tokens": f"{m.output_tokens:,}",
                "calls": f"{m.calls:,}",
                "words": fmt.score(m.mean_output_words, 0),
                "repetition": fmt.score(None if m.mean_repetition is None else 100 * m.mean_repetition),
            }
            for m in analysis.methods
        ],
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summary(data: RunData, level: float = 0.95) -> dict[str, Any] | None:
    """The summary.json entry: every number the section shows, unrounded by the page's formatting."""
    analysis = long_output(data.results, data.metadata, level)
    if analysis is None:
        return None

    def bin_dict(b) -> dict[str, Any]:
        return {"bin": b.name, "start": b.start, "end": b.end, "n": b.n, "mean": _round(b.mean),
                "low": _round(b.low), "high": _round(b.high), "kind": b.interval.kind}  # fmt: skip

    return {
        "lengths": [dataclasses.asdict(p) for p in analysis.lengths],
        "positions": {
            group.method: {
                "named": [bin_dict(b) for b in group.named],
                "tenths": [bin_dict(b) for b in group.tenths],
                "unplaced": group.unplaced,
                "unplaced_mean": _round(group.unplaced_mean),
            }
            for group in analysis.positions
        },
        "packing": [
            {
                "method": drop.method,
                "packed_mean": _round(drop.packed_mean),
                "one_at_a_time_mean": _round(drop.separate_mean),
                "questions": drop.questions,
                "n": drop.difference.n,
                "difference": _round(drop.difference.difference),
                "low": _round(drop.difference.low),
                "high": _round(drop.difference.high),
                "test": drop.difference.test,
                "p_value": _round(drop.difference.p_value, 6),
                "significant": drop.difference.significant,
                "sentence": drop.difference.sentence(),
            }
            for drop in analysis.packing
        ],
        "methods": [dataclasses.asdict(m) for m in analysis.methods],
    }

"""Compare runs side by side on the task × length cells they share, and list the cells they do not."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.analysis.intervals import MIN_BOOTSTRAP
from longscope.analysis.paired import PairedDifference, paired_difference, pairs_between
from longscope.analysis.scores import ScoreTable, methods_of, score_table, series_label
from longscope.report import figures
from longscope.report import format as fmt
from longscope.report.exports import difference_dict, interval_fields, interval_settings
from longscope.report.load import RunData
from longscope.report.page import effective_rule, paired_item, version
from longscope.report.templates import environment


@dataclass
class Comparison:
    runs: list[RunData]
    labels: list[str]
    threshold: float
    own: list[ScoreTable]  # each run on everything it has
    shared: list[ScoreTable]  # each run on the cells every run has
    shared_cells: list[tuple[str, int]]
    not_shared: dict[tuple[str, int], list[str]]  # cell -> labels of the runs that have it
    threshold_note: str | None
    methods: list[str]  # the method each run is compared on
    other_methods: list[list[str]]  # methods a run also has, left out of the comparison
    # Each later run against the first on the samples both scored (same sample, mode and turn, each run's
    # compared method), per length and, where there are several, over all of them.
    differences: list[PairedDifference] = field(default_factory=list)


def labels_for(runs: list[RunData]) -> list[str]:
    """Directory names, or whole paths where two runs share a name."""
    names = [run.label for run in runs]
    return [str(run.run_dir) if names.count(run.label) > 1 else run.label for run in runs]


def compare(runs: list[RunData], threshold: float | None = None) -> Comparison:
    note = None
    if threshold is None:
        chosen = {float(run.config.get("threshold", DEFAULT_THRESHOLD)) for run in runs}
        threshold = chosen.pop() if len(chosen) == 1 else DEFAULT_THRESHOLD
        if chosen:
            note = f"The runs were made with different thresholds; all are judged at {threshold:g} here."
    labels = labels_for(runs)
    # Each run is compared on its primary method (the full cache when it has one): a run's methods are
    # separate measurements, and mixing them would average a compressed cache into a model's score.
    found = [methods_of(run.results) or ["full"] for run in runs]
    methods = [m[0] for m in found]
    own = [
        score_table(run.results, run.metadata, threshold=threshold, method=method)
        for run, method in zip(runs, methods, strict=True)
    ]
    cell_sets = [set(table.cells) for table in own]
    common = set.intersection(*cell_sets) if cell_sets else set()
    shared = [
        score_table([r for r in run.results if (series_label(r, False), r.length) in common], run.metadata,
                    threshold=threshold, method=method)
        for run, method in zip(runs, methods, strict=True)
    ]  # fmt: skip
    not_shared = {
        cell: [label for label, cells in zip(labels, cell_sets, strict=True) if cell in cells]
        for cell in sorted(set.union(*cell_sets) - common)
    }
    return Comparison(
        runs,
        labels,
        threshold,
        own,
        shared,
        sorted(common),
        not_shared,
        note,
        methods,
        [m[1:] for m in found],
        run_differences(runs, labels, methods),
    )


def run_differences(runs: list[RunData], labels: list[str], methods: list[str]) -> list[PairedDifference]:
    """Every later run minus the first, paired on the samples both scored. A sample id names the task, its
    parameters, length, depth and seed, so a pair is the same test item in both runs (built with each run's
    tokenizer): what differs is the model or method, not the luck of the draw."""
    reference = [r for r in runs[0].results if r.method == methods[0] and r.length]
    out = []
    for run, label, method in zip(runs[1:], labels[1:], methods[1:], strict=True):
        by_length = pairs_between(reference, [r for r in run.results if r.method == method and r.length])
        for length in sorted(by_length):
            out.append(paired_difference(by_length[length], other=label, reference=labels[0], length=length))
        if len(by_length) != 1:  # several lengths, or none shared: the line over everything says which
            everything = [p for pairs in by_length.values() for p in pairs]
            out.append(paired_difference(everything, other=label, reference=labels[0]))
    return out


def _lines_plot(comparison: Comparison) -> figures.Plot:
    figure = Figure(figsize=(7.5, 4.0))
    axis = figure.add_subplot()
    lengths = sorted({n for _, n in comparison.shared_cells})
    for label, table in zip(comparison.labels, comparison.shared, strict=True):
        points = [
            (n, table.overall[n]) for n in lengths if n in table.overall and table.overall[n].mean is not None
        ]
        if not points:
            continue
        xs = [n for n, _ in points]
        line = axis.plot(
            xs, [c.mean for _, c in points], marker="o", linewidth=2, label=figures.plain(label)
        )[0]
        axis.fill_between(xs, *figures.band([c for _, c in points]), color=line.get_color(), alpha=0.12,
                          linewidth=0)  # fmt: skip
    axis.axhline(comparison.threshold, color="#c0392b", linestyle="--", linewidth=1.2,
                 label=f"threshold {comparison.threshold:g}")  # fmt: skip
    figures._length_axis(axis, lengths)
    axis.set_ylim(-3, 103)
    axis.set_ylabel("mean score over shared tasks")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figures.Plot(
        "fig-compare",
        "Runs against length",
        "Mean score over the shared tasks at each shared length, one line per run, with its stratified "
        "bootstrap 95% band where every task has enough samples for one; the dashed line is the threshold.",
        figures._png(figure),
        "line chart of each run's mean score against length",
    )


def _task_panels(comparison: Comparison) -> figures.Plot:
    tasks = sorted({t for t, _ in comparison.shared_cells})
    per_row = min(3, len(tasks))
    rows = math.ceil(len(tasks) / per_row)
    figure = Figure(figsize=(3.4 * per_row + 1.4, 2.8 * rows), layout="constrained")
    axes = figure.subplots(rows, per_row, squeeze=False, sharey=True)
    for index, task in enumerate(tasks):
        axis = axes[index // per_row][index % per_row]
        lengths = sorted(n for t, n in comparison.shared_cells if t == task)
        for i, (label, table) in enumerate(zip(comparison.labels, comparison.shared, strict=True)):
            cells = [table.cells[(task, n)] for n in lengths]
            xs = [n for n, c in zip(lengths, cells, strict=True) if c.mean is not None]
            axis.plot(xs, [c.mean for c in cells if c.mean is not None], marker="o", color=f"C{i % 10}",
                      label=figures.plain(label))  # fmt: skip
        figures._length_axis(axis, lengths)
        axis.set_xlabel("")
        axis.set_title(figures.plain(task), fontsize=9)
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3)
    for index in range(len(tasks), rows * per_row):
        axes[index // per_row][index % per_row].set_visible(False)
    axes[0][0].legend(fontsize=7, frameon=False)
    return figures.Plot(
        "fig-compare-tasks",
        "Each shared task",
        "Mean score of each shared task against length (tokens), one line per run.",
        figures._png(figure),
        "small line charts per task comparing runs",
    )


def render_comparison(comparison: Comparison) -> str:
    legend = fmt.Legend()
    runs = []
    for run, label, own, shared, method in zip(
        comparison.runs, comparison.labels, comparison.own, comparison.shared, comparison.methods, strict=True
    ):
        runs.append(
            {
                "label": label,
                "dir": str(run.run_dir),
                "model": run.model or (run.results[0].model if run.results else "—"),
                "state": "unfinished" if run.in_progress else (run.state or "—"),
                "method": method,
                "rows": len(run.results),
                "effective_shared": shared.effective_label() if shared.cells else "—",
                "effective_own": own.effective_label(),
                "auc": {"mean": fmt.score(shared.auc()), **legend.cell(shared.auc_interval(), fmt.AUC_KIND)}
                if shared.cells
                else None,
                "wavg_inc": fmt.score(shared.weighted("inc")),
                "wavg_dec": fmt.score(shared.weighted("dec")),
            }
        )
    shared_rows = []
    for task, length in sorted(comparison.shared_cells):
        cells = [table.cells[(task, length)] for table in comparison.shared]
        shared_rows.append(
            {
                "task": task,
                "length": fmt.length(length),
                "total": False,
                "cells": [{"mean": fmt.score(c.mean), **legend.cell(c.interval), "n": c.n} for c in cells],
            }
        )
    for length in sorted({n for _, n in comparison.shared_cells}):
        overall = [table.overall[length] for table in comparison.shared]
        shared_rows.append(
            {
                "task": "mean over shared tasks",
                "length": fmt.length(length),
                "total": True,
                "cells": [{"mean": fmt.score(c.mean), **legend.cell(c.interval), "n": c.n} for c in overall],
            }
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in comparison.differences:
        groups.setdefault(d.other, []).append(paired_item(d))
    notes = [comparison.threshold_note] if comparison.threshold_note else []
    notes += [f"{label} is compared on its {method} rows; its other methods ({', '.join(others)}) are left out."
              for label, method, others in zip(comparison.labels, comparison.methods, comparison.other_methods,
                                                strict=True) if others]  # fmt: skip
    notes += [f"{label} has not finished: its scores cover the samples done so far."
              for label, run in zip(comparison.labels, comparison.runs, strict=True) if run.in_progress]  # fmt: skip
    if comparison.not_shared:
        notes.append(
            f"The runs do not cover the same tasks and lengths: {len(comparison.shared_cells)} task × length "
            f"cells are compared, {len(comparison.not_shared)} are listed under “Not compared”."
        )
    plots = []
    if comparison.shared_cells:
        plots = [_lines_plot(comparison), _task_panels(comparison)]
    return (
        environment()
        .get_template("compare")
        .render(
            title=f"longscope comparison: {' vs '.join(comparison.labels)}",
            runs=runs,
            notes=notes,
            threshold=f"{comparison.threshold:g}",
            shared_rows=shared_rows,
            legend=legend.entries,
            effective_rule=effective_rule(comparison.threshold),
            min_bootstrap=MIN_BOOTSTRAP,
            reference=comparison.labels[0],
            paired=[{"run": run, "items": items} for run, items in groups.items()],
            plots=plots,
            not_shared=[
                {"task": task, "length": fmt.length(length), "runs": ", ".join(found)}
                for (task, length), found in comparison.not_shared.items()
            ],
            version=version(),
            written=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        )
    )


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    return {
        "threshold": comparison.threshold,
        "effective_rule": effective_rule(comparison.threshold),
        "intervals": interval_settings(comparison.shared[0]) if comparison.shared else None,
        "runs": [
            {
                "label": label,
                "run_dir": str(run.run_dir),
                "model": run.model,
                "state": run.state,
                "method": method,
                "effective_length_shared": shared.effective_length() if shared.cells else None,
                "effective_label_shared": shared.effective_label() if shared.cells else None,
                "effective_length_own": own.effective_length(),
                "effective_label_own": own.effective_label(),
                "relative_effective_length_shared": shared.relative_effective_length()
                if shared.cells
                else None,
                "auc_shared": {"value": shared.auc(), **interval_fields(shared.auc_interval())}
                if shared.cells
                else None,
                "weighted_average_shared": {"inc": shared.weighted("inc"), "dec": shared.weighted("dec")},
                "cells": [
                    {
                        "task": c.task,
                        "length": c.length,
                        "n": c.n,
                        "mean": c.mean,
                        **interval_fields(c.interval),
                        "failed": c.failed,
                    }
                    for c in sorted(shared.cells.values(), key=lambda c: (c.task, c.length))
                ],  # fmt: skip
                "overall": [
                    {"length": n, "n": c.n, "tasks": c.tasks, "mean": c.mean, **interval_fields(c.interval)}
                    for n, c in shared.overall.items()
                ],
            }
            for run, label, own, shared, method in zip(
                comparison.runs,
                comparison.labels,
                comparison.own,
                comparison.shared,
                comparison.methods,
                strict=True,
            )
        ],
        "shared_cells": [{"task": t, "length": n} for t, n in comparison.shared_cells],
        # Each later run minus the first (runs[0]), paired on the samples both scored.
        "paired": [difference_dict(d) for d in comparison.differences],
        "not_shared": [
            {"task": t, "length": n, "only_in": found} for (t, n), found in comparison.not_shared.items()
        ],
    }

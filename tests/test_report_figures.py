"""The report's figures from hand-made rows: odd task names, many tasks, one length, nothing scored."""

from __future__ import annotations

import base64

from longscope.analysis.frontier import COSTS, frontier
from longscope.analysis.heatmap import depth_grids
from longscope.analysis.plane import difficulty_plane
from longscope.analysis.scores import score_table
from longscope.core import Result
from longscope.report import figures
from longscope.report.page import degradation_by_task


def rows(tasks, lengths, *, depths=(None,), method="full", score=0.5):
    made = []
    for task in tasks:
        for length in lengths:
            for depth in depths:
                made.append(Result(key=f"{task}{length}{depth}{method}", sample_id=f"{task}{length}{depth}",
                                   task=task, length=length, depth=depth, seed=0, turn=0, status="ok",
                                   score=score, method=method, kv_bytes=length * 10, prefill_s=length / 1e3,
                                   input_tokens=length, diffusion=0.2, scope=0.4))  # fmt: skip
    return made


def is_png(plot: figures.Plot) -> bool:
    return base64.b64decode(plot.src.split(",", 1)[1]).startswith(b"\x89PNG") and bool(plot.caption)


def test_figures_survive_odd_names_and_many_tasks():
    # A "$" would start matplotlib's mathtext; twelve tasks need more than the ten default colours.
    tasks = ["cost $5 $x$", "a_b^c", *[f"task{i}" for i in range(10)]]
    data = rows(tasks, [1024, 2048], depths=(0.0, 1.0)) + rows(
        tasks[:2], [1024, 2048], method="snap $", score=0.25
    )
    table = score_table(data, method="full")
    assert is_png(figures.scores_by_length(table))
    series = {name: result.relative() for name, result in degradation_by_task(table).items()}
    assert is_png(figures.degradation_plot(series, table.lengths))
    grids = depth_grids(data)
    assert len(grids) == len(tasks) and is_png(figures.heatmap(grids[0]))
    assert is_png(figures.plane_plot(difficulty_plane(data)))
    assert is_png(figures.frontier_plot({cost: frontier(data, cost) for cost in COSTS}))


def test_figures_of_one_length_and_of_unscored_cells():
    data = rows(["only"], [4096])
    data.append(Result(key="f", sample_id="f", task="failing", length=4096, depth=None, seed=0, turn=0,
                       status="failed", diffusion=0.9, scope=0.9))  # fmt: skip
    table = score_table(data)
    plot = figures.scores_by_length(table)
    assert is_png(plot) and plot.id == "fig-scores"
    plane = difficulty_plane(data)
    assert [p.score for p in plane.points[4096] if p.task == "failing"] == [None]
    assert is_png(figures.plane_plot(plane))

"""Depth × length grids and the difficulty plane, from hand-made rows."""

from __future__ import annotations

from longscope.analysis.heatmap import depth_grids
from longscope.analysis.plane import difficulty_plane
from longscope.core import Result


def make(task, length, score, depth=None, *, status="ok", sid="", diffusion=None, scope=None) -> Result:
    return Result(key=f"{task}{length}{depth}{sid}", sample_id=sid or f"{task}-{length}-{depth}", task=task,
                  length=length, depth=depth, seed=0, turn=0, status=status,
                  score=score if status == "ok" else None, diffusion=diffusion, scope=scope)  # fmt: skip


def test_depth_grid_per_task_with_depths_only():
    rows = [
        make("niah", 1024, 1.0, 0.0, sid="x1"), make("niah", 1024, 0.0, 0.0, sid="x2"),
        make("niah", 2048, 1.0, 0.5), make("niah", 2048, None, 1.0, status="failed"),
        make("summary", 1024, 0.5),  # no depth: no grid for this task
    ]  # fmt: skip
    grids = depth_grids(rows, {"x1": {"depth": 0.0}, "niah-2048-0.5": {"depth": 0.49999999}})
    assert [g.task for g in grids] == ["niah"]
    grid = grids[0]
    assert grid.depths == [0.0, 0.5] and grid.lengths == [1024, 2048]  # the failed row adds no cell
    assert grid.mean(0.0, 1024) == 50.0 and grid.n(0.0, 1024) == 2
    assert grid.mean(0.5, 2048) == 100.0  # the metadata's depth, rounded, is used
    assert grid.mean(0.5, 1024) is None and grid.n(0.5, 1024) == 0


def test_plane_places_tasks_by_columns_or_metadata_per_length():
    rows = [
        make("find", 1024, 1.0, diffusion=0.2, scope=0.1), make("find", 1024, 0.0, diffusion=0.2, scope=0.1),
        make("find", 2048, None, status="failed", diffusion=0.2, scope=0.1),
        make("sum", 1024, 0.25, sid="m1"),
        make("lost", 1024, 1.0),
    ]  # fmt: skip
    plane = difficulty_plane(rows, {"m1": {"diffusion": 0.8, "scope": 0.9}})
    assert plane.lengths == [1024, 2048]
    at_1k = {p.task: p for p in plane.points[1024]}
    assert (at_1k["find"].diffusion, at_1k["find"].scope, at_1k["find"].score, at_1k["find"].n) == (
        0.2,
        0.1,
        50.0,
        2,
    )
    assert (at_1k["sum"].diffusion, at_1k["sum"].scope, at_1k["sum"].score) == (0.8, 0.9, 25.0)
    assert [(p.task, p.score) for p in plane.points[2048]] == [("find", None)]  # every row failed
    assert plane.unplaced == ["lost"]

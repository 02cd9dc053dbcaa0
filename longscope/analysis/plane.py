"""The difficulty plane: every task at its (diffusion, scope) coordinates with its mean score, per length."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from longscope.core import Result


@dataclass(frozen=True)
class PlanePoint:
    task: str
    length: int
    diffusion: float  # how hard it is to find what is needed, 0-1
    scope: float  # how much of the context is needed, 0-1
    score: float | None  # mean 0-100 over scored rows; None when every row failed
    n: int


@dataclass
class Plane:
    lengths: list[int]
    points: dict[int, list[PlanePoint]]  # by length
    unplaced: list[str]  # tasks with no coordinates on record


def _coordinates(row: Result, meta: Mapping[str, Any]) -> tuple[float, float] | None:
    diffusion = row.diffusion if row.diffusion is not None else meta.get("diffusion")
    scope = row.scope if row.scope is not None else meta.get("scope")
    if diffusion is None or scope is None:
        return None
    return float(diffusion), float(scope)


def difficulty_plane(
    results: Iterable[Result], metadata: Mapping[str, Mapping[str, Any]] | None = None
) -> Plane:
    """Place each task by the coordinates its rows (or their samples) record, scored per length."""
    metadata = metadata or {}
    coords: dict[str, tuple[float, float]] = {}
    scores: dict[tuple[str, int], list[float]] = defaultdict(list)
    seen: dict[tuple[str, int], int] = defaultdict(int)
    tasks = set()
    for row in results:
        if not row.length:
            continue  # a rejected benchmark record: no length, no place
        tasks.add(row.task)
        found = _coordinates(row, metadata.get(row.sample_id, {}))
        if found is not None:
            coords.setdefault(row.task, found)
        seen[(row.task, row.length)] += 1
        if row.status == "ok" and row.score is not None:
            scores[(row.task, row.length)].append(100.0 * float(row.score))
    lengths = sorted({length for _, length in seen})
    points: dict[int, list[PlanePoint]] = {length: [] for length in lengths}
    for (task, length), _count in sorted(seen.items()):
        if task not in coords:
            continue
        values = scores.get((task, length), [])
        diffusion, scope = coords[task]
        points[length].append(
            PlanePoint(
                task, length, diffusion, scope, sum(values) / len(values) if values else None, len(values)
            )
        )
    return Plane(lengths=lengths, points=points, unplaced=sorted(tasks - set(coords)))

"""The difficulty plane: every task at its (diffusion, scope) coordinates with its mean score, per length."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from longscope.core import Result


@dataclass(frozen=True)
class PlanePoint:
    task: str
    length: int
    diffusion: float  # how hard it is to find what is needed, 0-1, as the task declares it
    scope: float  # how much of the context is needed, 0-1, as the task declares it
    score: float | None  # mean 0-100 over scored rows; None when every row failed
    n: int
    # Measured on the samples' evidence (means over the rows that have it); None: declared only.
    measured_scope: float | None = None
    measured_diffusion_bm25: float | None = None
    measured_diffusion_dense: float | None = None

    @property
    def measured_diffusion(self) -> float | None:
        """The mean over the retrievers that measured it."""
        values = [v for v in (self.measured_diffusion_bm25, self.measured_diffusion_dense) if v is not None]
        return sum(values) / len(values) if values else None

    @property
    def measured(self) -> bool:
        return self.measured_scope is not None and self.measured_diffusion is not None

    @property
    def distance(self) -> float | None:
        """How far the measured point lies from the declared one on the unit square."""
        if not self.measured:
            return None
        return math.hypot(self.measured_scope - self.scope, self.measured_diffusion - self.diffusion)


@dataclass
class Plane:
    lengths: list[int]
    points: dict[int, list[PlanePoint]]  # by length
    unplaced: list[str]  # tasks with no coordinates on record


_MEASURED = ("measured_scope", "measured_diffusion_bm25", "measured_diffusion_dense")


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
    measured: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    tasks = set()
    for row in results:
        if not row.length:
            continue  # a rejected benchmark record: no length, no place
        tasks.add(row.task)
        found = _coordinates(row, metadata.get(row.sample_id, {}))
        if found is not None:
            coords.setdefault(row.task, found)
        seen[(row.task, row.length)] += 1
        for name in _MEASURED:
            value = getattr(row, name, None)
            if value is not None:
                measured[(row.task, row.length, name)].append(float(value))
        if row.status == "ok" and row.score is not None:
            scores[(row.task, row.length)].append(100.0 * float(row.score))
    lengths = sorted({length for _, length in seen})
    points: dict[int, list[PlanePoint]] = {length: [] for length in lengths}
    for (task, length), _count in sorted(seen.items()):
        if task not in coords:
            continue
        values = scores.get((task, length), [])
        diffusion, scope = coords[task]
        means = {
            name: sum(found) / len(found)
            for name in _MEASURED
            if (found := measured.get((task, length, name)))
        }
        points[length].append(
            PlanePoint(
                task,
                length,
                diffusion,
                scope,
                sum(values) / len(values) if values else None,
                len(values),
                **means,
            )
        )
    return Plane(lengths=lengths, points=points, unplaced=sorted(tasks - set(coords)))

"""Depth × length grids: the mean score of a needle-style task at each needle depth and length."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from longscope.core import Result


@dataclass
class DepthGrid:
    """One task's scores (0-100) by needle depth (rows, 0 = start of the context) and length (columns)."""

    task: str
    depths: list[float]
    lengths: list[int]
    scores: dict[tuple[float, int], list[float]]

    def mean(self, depth: float, length: int) -> float | None:
        values = self.scores.get((depth, length))
        return sum(values) / len(values) if values else None

    def n(self, depth: float, length: int) -> int:
        return len(self.scores.get((depth, length), []))


def depth_of(row: Result, meta: Mapping[str, Any]) -> float | None:
    """The needle depth a sample was built for: its metadata's, else the row's own column."""
    value = meta.get("depth", row.depth)
    if value is None:
        value = row.depth
    # Rounded so that 0.25 written by two code paths lands in one row of the grid.
    return None if value is None else round(float(value), 4)


def depth_grids(
    results: Iterable[Result], metadata: Mapping[str, Mapping[str, Any]] | None = None
) -> list[DepthGrid]:
    """A grid for every task whose scored samples carry a depth; tasks without depths get none."""
    metadata = metadata or {}
    per_task: dict[str, dict[tuple[float, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in results:
        if row.status != "ok" or row.score is None:
            continue
        depth = depth_of(row, metadata.get(row.sample_id, {}))
        if depth is None:
            continue
        per_task[row.task][(depth, row.length)].append(100.0 * float(row.score))
    grids = []
    for task in sorted(per_task):
        scores = dict(per_task[task])
        grids.append(
            DepthGrid(
                task=task,
                depths=sorted({d for d, _ in scores}),
                lengths=sorted({n for _, n in scores}),
                scores=scores,
            )
        )
    return grids

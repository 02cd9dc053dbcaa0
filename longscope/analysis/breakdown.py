"""Scores split by one sample metadata key (or by length), per task: what `longscope show --by KEY` prints."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from longscope.analysis.scores import ScoreCell, series_label
from longscope.core import Result


@dataclass
class Breakdown:
    by: str | None
    metric: str | None
    tasks: list[str]
    values: list
    cells: dict[tuple[str, object], ScoreCell]


def breakdown(
    results: Iterable[Result],
    metadata: dict[str, dict],
    *,
    by: str | None = None,
    metric: str | None = None,
) -> Breakdown:
    """Group finished rows by series and ``metadata[by]`` (length when ``by`` is None), scoring each row by its
    main score or, with ``metric``, by the scorer's sub-score of that name, on 0-100. Rows without the key are
    left out."""
    cells: dict[tuple[str, object], ScoreCell] = defaultdict(ScoreCell)
    for row in results:
        if row.status != "ok":
            continue
        if by is None:
            value: object = row.length
        else:
            meta = metadata.get(row.sample_id, {})
            if by not in meta:
                continue
            value = meta[by]
            value = tuple(value) if isinstance(value, list) else value
        number = row.score if metric is None else json.loads(row.details or "{}").get(metric)
        if number is None:
            continue
        cell = cells[(series_label(row), value)]
        cell.scores.append(100.0 * float(number))
        cell.contexts.append(row.sample_id)
    tasks = sorted({task for task, _ in cells})
    values = sorted({value for _, value in cells}, key=lambda v: (str(type(v)), v))
    return Breakdown(by=by, metric=metric, tasks=tasks, values=values, cells=dict(cells))


# Sample metadata keys that the harder reading tasks set their difficulty by (issue 22): the word overlap of a
# latent needle and its question, the ladder's level, MRCR's repeated requests, and the operations of a GSM-like
# graph. The report shows score by each one a run's samples carry.
REPORT_KEYS = ("overlap", "level", "rounds", "operations")


def report_breakdowns(results: Iterable[Result], metadata: dict[str, dict]) -> list[Breakdown]:
    """One breakdown per key of ``REPORT_KEYS`` that some finished row's sample carries, in that order."""
    rows = [row for row in results if row.status == "ok"]
    carried = {key for row in rows for key in metadata.get(row.sample_id, {})}
    return [breakdown(rows, metadata, by=key) for key in REPORT_KEYS if key in carried]

"""The cost model checked against a run's own rows: predicted and measured prefill time and KV bytes."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from longscope.analysis.cost_model import ModelShape, percent_error, predict
from longscope.analysis.hardware import Hardware
from longscope.core import Result


@dataclass(frozen=True)
class OverlayPoint:
    length: int
    input_tokens: int
    held_tokens: int  # tokens whose keys and values the cache holds when generation ends
    prefill_measured: float | None
    prefill_predicted: float
    kv_measured: int | None
    kv_predicted: float


@dataclass(frozen=True)
class LengthCheck:
    length: int
    n: int
    prefill_measured: float | None  # mean over the length's rows
    prefill_predicted: float | None  # mean of the rows' predictions
    prefill_error: float | None  # percent, of the means
    kv_measured: float | None
    kv_predicted: float | None
    kv_error: float | None


@dataclass
class Overlay:
    shape: ModelShape
    hardware: Hardware
    points: list[OverlayPoint]
    per_length: list[LengthCheck]

    def _errors(self, measured: str, predicted: str) -> list[float]:
        return [
            percent_error(getattr(p, predicted), getattr(p, measured))
            for p in self.points
            if getattr(p, measured) not in (None, 0)
        ]

    def mean_abs_error(self, what: str) -> float | None:
        """Mean absolute error in percent over rows, for ``prefill`` or ``kv``."""
        errors = self._errors(f"{what}_measured", f"{what}_predicted")
        return sum(abs(e) for e in errors) / len(errors) if errors else None

    def median_error(self, what: str) -> float | None:
        """The median signed error in percent: positive when the model predicts too much."""
        errors = self._errors(f"{what}_measured", f"{what}_predicted")
        return statistics.median(errors) if errors else None

    def count(self, what: str) -> int:
        return len(self._errors(f"{what}_measured", f"{what}_predicted"))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def held_tokens(row: Result) -> int:
    """Prompt plus generated tokens, less the last token when generation stopped at its budget: that one is
    returned without being fed back, so its keys and values were never computed."""
    held = (row.input_tokens or 0) + (row.output_tokens or 0)
    return held - 1 if row.finish_reason == "length" and (row.output_tokens or 0) > 0 else held


def overlay(results: Iterable[Result], shape: ModelShape, hw: Hardware) -> Overlay:
    """Predict every finished full-cache row of the run and set the prediction beside what was measured.

    Rows of other methods are left out: the cost model describes the full cache, which they change.
    """
    points = []
    for row in results:
        if row.status != "ok" or row.method != "full" or not row.input_tokens:
            continue
        held = held_tokens(row)
        points.append(
            OverlayPoint(
                length=row.length,
                input_tokens=row.input_tokens,
                held_tokens=held,
                prefill_measured=row.prefill_s,
                prefill_predicted=predict(shape, hw, row.input_tokens).prefill_s,
                kv_measured=row.kv_bytes,
                kv_predicted=shape.kv_bytes(held),
            )
        )
    by_length: dict[int, list[OverlayPoint]] = defaultdict(list)
    for point in points:
        by_length[point.length].append(point)
    checks = []
    for length in sorted(by_length):
        group = by_length[length]
        timed = [p for p in group if p.prefill_measured]
        sized = [p for p in group if p.kv_measured]
        # Means of the rows' own measurements and predictions, so each row is predicted at its own length.
        prefill_measured = _mean([p.prefill_measured for p in timed])
        prefill_predicted = _mean([p.prefill_predicted for p in timed])
        kv_measured = _mean([p.kv_measured for p in sized])
        kv_predicted = _mean([p.kv_predicted for p in sized])
        checks.append(
            LengthCheck(
                length=length,
                n=len(group),
                prefill_measured=prefill_measured,
                prefill_predicted=prefill_predicted,
                prefill_error=percent_error(prefill_predicted, prefill_measured)
                if prefill_measured
                else None,
                kv_measured=kv_measured,
                kv_predicted=kv_predicted,
                kv_error=percent_error(kv_predicted, kv_measured) if kv_measured else None,
            )
        )
    return Overlay(shape=shape, hardware=hw, points=points, per_length=checks)

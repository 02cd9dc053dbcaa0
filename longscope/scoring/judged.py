"""The metric of tasks graded by a judge (--judge): no rule scores them, so asking this scorer is a bug."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


@SCORERS.register("judge")
def judge(prediction: str, answers: Sequence[str]) -> float:
    """Graded by the judge against the sample's checklist (longscope.judging), never by a rule here."""
    raise ValueError("this task is graded by a judge (--judge), not by a rule")

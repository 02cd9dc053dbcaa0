"""The scorer a sample names itself (``meta["metric"]``): for a benchmark read over several subsets whose
published metrics differ, so that one task still scores each record by its own subset's metric."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.core import UsageError
from longscope.scoring import SCORERS, score_with_details


@SCORERS.register("by_sample")
def by_sample(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """Score with the scorer ``meta["metric"]`` names (it gets the same metadata)."""
    name = meta.get("metric")
    if not name or name == "by_sample":
        raise UsageError("the scorer by_sample needs the sample's metadata to name a metric (key 'metric')")
    return score_with_details(name, prediction, answers, meta)

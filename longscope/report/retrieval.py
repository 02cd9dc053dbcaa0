"""The report's retrieval section: sweep curves and each method's score and tokens beside full context."""

from __future__ import annotations

from typing import Any

from longscope.analysis.retrieval_curves import MATCH_POINTS, sweeps, versus_full
from longscope.report import figures
from longscope.report import format as fmt
from longscope.report.load import RunData


def section(data: RunData) -> dict[str, Any] | None:
    """What the page shows, or None when the run has neither a sweep nor a method beside full context."""
    found, versus = sweeps(data.results), versus_full(data.results)
    if not found and not versus:
        return None
    return {
        "plot": figures.retrieval_plot(found, versus),
        "match_points": f"{MATCH_POINTS:g}",
        "rows": [
            {
                "task": v.task,
                "length": fmt.length(v.length),
                "method": v.method,
                "score": f"{v.score:.1f}",
                "full_score": f"{v.full_score:.1f}",
                "gap": f"{v.gap:+.1f}",
                "token_share": f"{100 * v.token_share:.1f}%",
                "recall": "–" if v.retrieval_recall is None else f"{v.retrieval_recall:.2f}",
                "matches": v.matches_full,
            }
            for v in versus
        ],
    }


def summary(data: RunData) -> dict[str, Any]:
    """The same numbers for summary.json: sweep points per series and length, and every method beside full."""
    return {
        "sweeps": [
            {
                "series": s.series,
                "setting": s.setting,
                "length": s.length,
                "points": [
                    {
                        "value": p.value,
                        "method": p.method,
                        "score": round(p.score, 3),
                        "input_tokens": round(p.input_tokens, 1),
                        "total_tokens": round(p.total_tokens, 1),
                        "calls": round(p.calls, 3),
                        "n": p.n,
                    }  # fmt: skip
                    for p in s.points
                ],
            }
            for s in sweeps(data.results)
        ],
        "versus_full": [
            {
                "task": v.task,
                "length": v.length,
                "method": v.method,
                "score": round(v.score, 3),
                "input_tokens": round(v.input_tokens, 1),
                "full_score": round(v.full_score, 3),
                "full_input_tokens": round(v.full_input_tokens, 1),
                "token_share": round(v.token_share, 4),
                "matches_full": v.matches_full,
                "retrieval_recall": v.retrieval_recall,
            }  # fmt: skip
            for v in versus_full(data.results)
        ],
    }

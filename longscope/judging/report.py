"""The judge's lines in a run's summary: what judging cost, apart from the evaluated model, and what went unjudged."""

from __future__ import annotations

from longscope.core import Result
from longscope.judging.cost import Usage
from longscope.judging.setup import NO_JUDGE


def judge_usage(results: list[Result]) -> dict[str, Usage]:
    """Each judge's calls, tokens, seconds and cost over a run's rows."""
    usage: dict[str, Usage] = {}
    for row in results:
        if not row.judge:
            continue
        usage.setdefault(row.judge, Usage()).add(
            Usage(
                calls=row.judge_calls or 0,
                input_tokens=row.judge_input_tokens or 0,
                output_tokens=row.judge_output_tokens or 0,
                seconds=row.judge_s or 0.0,
                cost=row.judge_cost,
            )
        )
    return usage


def judging_lines(results: list[Result]) -> list[str]:
    lines = []
    for judge, used in judge_usage(results).items():
        cost = "no prices given" if used.cost is None else f"cost {used.cost:.4f} at the given prices"
        graded = sum(1 for r in results if r.judge == judge)
        lines.append(
            f"Judge {judge}: {graded} outputs graded with {used.calls} calls (cached judgements make none), "
            f"{used.input_tokens:,} input and {used.output_tokens:,} output tokens, {used.seconds:.1f} s, {cost}; "
            "counted apart from the evaluated model."
        )
    unjudged = sum(1 for r in results if r.status == "skipped" and r.error == NO_JUDGE)
    if unjudged:
        lines.append(f"{unjudged} outputs skipped: {NO_JUDGE}.")
    return lines

"""The report's judging entries: each judge's calls, tokens, seconds and cost beside the evaluated model's, the
judge identities and prompt versions a run stored, failed judgements, and two judges compared on the same outputs."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longscope.core import Result
from longscope.judging.compare import JudgeAgreement, agreement
from longscope.report import format as fmt
from longscope.report.load import RunData
from longscope.store import DB_NAME, RunStore

# How `longscope regrade` labels the rows it writes (judging/regrade.py): the method gets ``@judge:NAME`` and the
# key ``|judge:IDENTITY``. The report reads the mark here because the regrade module reaches the backends, which
# the report may not import.
REGRADE_KEY_MARK = "|judge:"
# The sample metadata key a judged task sets (judging/grading.py): a skipped row of such a sample went unjudged.
JUDGED_SAMPLE_KEY = "judge_prompt"


@dataclass
class Spend:
    """Calls, tokens, seconds and (where prices were given) cost, summed over rows."""

    rows: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "seconds": round(self.seconds, 4),
            "cost": None if self.cost is None else round(self.cost, 6),
        }


@dataclass
class JudgeUse:
    """One judge over a run: who it is (``stored``: what the run's metadata says of it), its spend, and how
    many of its judgements succeeded or failed."""

    identity: str
    regrade: bool
    stored: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)  # name@version of every prompt its rows were graded with
    spend: Spend = field(default_factory=Spend)
    graded: int = 0
    failed: int = 0


@dataclass
class Judging:
    model: Spend  # the evaluated model's own spend over the run's answered rows (regraded copies left out)
    judges: list[JudgeUse]
    unjudged: int  # judged samples skipped because the run had no judge
    comparisons: list[JudgeAgreement]


def is_regrade(row: Result) -> bool:
    return REGRADE_KEY_MARK in row.key


def stored_judges(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's ``judge`` entry (identity, URI, prices, prompt templates) and its ``regrades`` list; empty when
    the folder holds no store (analyses built by hand) or the store has none."""
    if not (Path(run_dir) / DB_NAME).is_file():
        return {}, []
    try:
        store = RunStore.open(run_dir, create=False)
    except sqlite3.DatabaseError:
        return {}, []
    try:
        first = store.get_meta("judge")
        later = store.get_meta("regrades")
    finally:
        store.close()
    return (first if isinstance(first, dict) else {}), [d for d in (later or []) if isinstance(d, dict)]


def _prompt_label(row: Result) -> str | None:
    try:
        return json.loads(row.details or "{}").get("judge_prompt")
    except ValueError:
        return None


def _add(spend: Spend, calls: int | None, input_tokens: int | None, output_tokens: int | None,
         seconds: float | None, cost: float | None = None) -> None:  # fmt: skip
    spend.rows += 1
    spend.calls += calls or 0
    spend.input_tokens += input_tokens or 0
    spend.output_tokens += output_tokens or 0
    spend.seconds += seconds or 0.0
    if cost is not None:
        spend.cost = (spend.cost or 0.0) + cost


def judging(data: RunData) -> Judging | None:
    """The judge's share of ``data``, or None when no row was graded by a judge and none went unjudged."""
    judged = [r for r in data.results if r.judge]
    unjudged = sum(
        1
        for r in data.results
        if r.status == "skipped" and JUDGED_SAMPLE_KEY in data.metadata.get(r.sample_id, {})
    )
    if not judged and not unjudged:
        return None
    first_meta, regrades = stored_judges(data.run_dir)
    described = {d.get("identity"): d for d in [first_meta, *regrades] if d.get("identity")}
    uses: dict[str, JudgeUse] = {}
    model = Spend()
    for row in judged:
        use = uses.setdefault(row.judge, JudgeUse(row.judge, is_regrade(row), described.get(row.judge, {})))
        _add(use.spend, row.judge_calls, row.judge_input_tokens, row.judge_output_tokens, row.judge_s,
             row.judge_cost)  # fmt: skip
        use.graded += row.status == "ok"
        use.failed += row.status == "failed"
        label = _prompt_label(row)
        if label and label not in use.prompts:
            use.prompts.append(label)
    # A regraded row copies its answer's columns (the model answered once); a skipped row made no request.
    for row in data.results:
        if row.status != "skipped" and row.length and not is_regrade(row):
            _add(
                model,
                row.calls if row.calls is not None else 1,
                row.input_tokens,
                row.output_tokens,
                row.wall_s,
            )
    originals = [r for r in judged if not is_regrade(r)]
    first = originals[0].judge if originals else first_meta.get("identity", "")
    comparisons = [
        agreement(originals, [r for r in judged if r.judge == use.identity], first, use.identity)
        for use in uses.values()
        if use.regrade
    ]
    return Judging(model, list(uses.values()), unjudged, comparisons)


def _templates(use: JudgeUse) -> str:
    """The prompt versions the judge graded with, and those the run stored when it differs (a stored template
    unused by any row is still listed: it is what a re-run would grade with)."""
    stored = use.stored.get("prompts") or {}
    labels = list(use.prompts)
    for name, prompt in stored.items():
        label = f"{name}@{prompt.get('version')}" if isinstance(prompt, dict) else str(name)
        if label not in labels:
            labels.append(label)
    return ", ".join(labels) or "—"


def _spend_row(who: str, role: str, spend: Spend, graded: str = "", failed: str = "") -> dict[str, str]:
    return {
        "who": who,
        "role": role,
        "graded": graded,
        "failed": failed,
        "calls": f"{spend.calls:,}",
        "input_tokens": f"{spend.input_tokens:,}",
        "output_tokens": f"{spend.output_tokens:,}",
        "seconds": fmt.seconds(spend.seconds),
        "cost": "no prices given" if spend.cost is None else f"{spend.cost:.4f}",
    }


def section(data: RunData) -> dict[str, Any] | None:
    """What the page shows, or None when nothing in the run was judged."""
    found = judging(data)
    if found is None:
        return None
    rows = [_spend_row("evaluated model", "answered the run's samples", found.model)]
    for use in found.judges:
        role = "regrade (`longscope regrade`)" if use.regrade else "judge of the run"
        rows.append(_spend_row(use.identity, role, use.spend, str(use.graded), str(use.failed)))
    identities = [
        {
            "identity": use.identity,
            "uri": use.stored.get("uri") or "—",
            "window": "—"
            if use.stored.get("context_window") is None
            else f"{use.stored['context_window']:,}",
            "prompts": _templates(use),
        }
        for use in found.judges
    ]
    return {
        "rows": rows,
        "identities": identities,
        "failed": sum(use.failed for use in found.judges),
        "unjudged": found.unjudged,
        "comparisons": [
            {"sentence": c.sentence(), "significant": c.difference.significant} for c in found.comparisons
        ],
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _comparison(c: JudgeAgreement) -> dict[str, Any]:
    d = c.difference
    return {
        "first": c.first,
        "second": c.second,
        "n": c.n,
        "items": c.items,
        "same_items": _round(c.same_items),
        "within_quarter": _round(c.within_quarter),
        "difference": {
            "n": d.n,
            "difference": _round(d.difference),
            "low": _round(d.low),
            "high": _round(d.high),
            "test": d.test,
            "p_value": _round(d.p_value, 6),
            "significant": bool(d.significant),
            "reason": d.reason or None,
        },
        "sentence": c.sentence(),
    }


def summary(data: RunData) -> dict[str, Any] | None:
    """The summary.json entry: the same numbers, unformatted."""
    found = judging(data)
    if found is None:
        return None
    return {
        "model": found.model.as_dict(),
        "judges": [
            {
                "identity": use.identity,
                "regrade": use.regrade,
                "uri": use.stored.get("uri"),
                "context_window": use.stored.get("context_window"),
                "price_in": use.stored.get("price_in"),
                "price_out": use.stored.get("price_out"),
                "prompts_used": use.prompts,
                "prompts_stored": {
                    name: p.get("version")
                    for name, p in (use.stored.get("prompts") or {}).items()
                    if isinstance(p, dict)
                },  # fmt: skip
                "graded": use.graded,
                "failed": use.failed,
                **use.spend.as_dict(),
            }
            for use in found.judges
        ],
        "unjudged": found.unjudged,
        "comparisons": [_comparison(c) for c in found.comparisons],
    }

"""``longscope regrade``: a finished run's judged outputs graded again by another judge, written as new rows beside
the first judge's (never over them), and the two judges compared."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from longscope.core import Backend, Result, UsageError
from longscope.judging.compare import JudgeAgreement, agreement
from longscope.judging.grading import check_fits, grade_row, needs_judge
from longscope.judging.judge import JudgeWindowError
from longscope.judging.setup import make_judge
from longscope.store import RunStore

REGRADE_MARK = "|judge:"


def is_regrade(row: Result) -> bool:
    return REGRADE_MARK in row.key


def regrade(run_dir: Path, judge_uri: str, *, judge_backend: Backend | None = None) -> JudgeAgreement:
    """Grade every judged output of ``run_dir`` with the judge ``judge_uri``. Each new row is keyed by the old
    row's key and the judge, and labelled ``METHOD@judge:NAME``, so the summary shows it as its own series and
    a second regrade by the same judge replaces only its own rows. Bad input fails before any row is written."""
    # Opening to read gives the one clear line for a folder that is not a run (it is read-only, so the rows are
    # written through a second, writable opening that would otherwise create the folder).
    RunStore.open(run_dir, create=False).close()
    store = RunStore.open(run_dir, create=True)
    try:
        rows = store.results()
        originals = [r for r in rows if r.judge and not is_regrade(r) and r.prediction]
        if not originals:
            raise UsageError(f"{run_dir} holds no judged outputs to regrade; run it with --judge first")
        samples = {r.sample_id: store.sample(r.sample_id) for r in originals}
        originals = [
            r for r in originals if samples[r.sample_id] is not None and needs_judge(samples[r.sample_id])
        ]
        judge = make_judge(judge_uri, judge_backend)
        first = originals[0].judge
        if judge.identity == first:
            raise UsageError(f"{run_dir} was graded by {first} already; give another judge to compare with")
        for sample_id in {r.sample_id for r in originals}:
            try:
                check_fits(judge, samples[sample_id])
            except JudgeWindowError as exc:
                raise UsageError(f"{sample_id}: {exc}") from None
        regraded = []
        for row in originals:
            fresh = dataclasses.replace(
                row,
                key=f"{row.key}{REGRADE_MARK}{judge.identity}",
                method=f"{row.method}@judge:{judge.name}",
                status="ok",
                error=None,
            )
            new = grade_row(judge, fresh, samples[row.sample_id])
            store.write(new, samples[row.sample_id])
            regraded.append(new)
        done = store.get_meta("regrades") or []
        store.set_meta(
            "regrades", [*[d for d in done if d.get("identity") != judge.identity], judge.describe()]
        )
        return agreement(originals, regraded, first, judge.identity)
    finally:
        store.close()

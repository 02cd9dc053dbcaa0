"""The judge in a run: made from its URI and checked up front, the work it cannot grade refused or skipped before
anything runs, and the rows of judged samples graded as they reach the driver."""

from __future__ import annotations

import dataclasses

from longscope.backends import parse_uri, resolve
from longscope.core import Backend, Result, UsageError
from longscope.judging.cost import prices_of
from longscope.judging.entailment import check_citations
from longscope.judging.grading import check_fits, grade_row, needs_judge
from longscope.judging.judge import Judge, JudgeWindowError
from longscope.plan import Prepared

NO_JUDGE = "graded by a judge, and the run has none; give --judge MODEL_URI to run it"


def task_needs_judge(task: object) -> bool:
    """Whether a task's samples are graded by a judge: its ``needs_judge`` (a class attribute or a property, as
    L-Eval's open-ended subsets have)."""
    return bool(getattr(task, "needs_judge", False))


def check_judge_uri(uri: str) -> None:
    """The cheap checks of a judge URI, before anything loads."""
    prices_of(parse_uri(uri))


def refuse_unjudged(tasks: list, judge_uri: str | None) -> None:
    """With no judge, a run whose every task needs one is refused in one line; a run mixing them runs the others
    and skips the judged ones with the reason."""
    if judge_uri is None and tasks and all(task_needs_judge(task) for task in tasks):
        names = ", ".join(task.label() for task in tasks)
        raise UsageError(f"{names}: {NO_JUDGE}")


def make_judge(uri: str, backend: Backend | None = None) -> Judge:
    """The judge a URI names, checked with one tiny call (a judge that does not answer fails here)."""
    parsed = parse_uri(uri)
    judge = Judge(backend or resolve(uri), uri=uri, prices=prices_of(parsed))
    judge.check()
    return judge


def judge_work(work: list[Prepared], judge: Judge | None) -> list[Prepared]:
    """Judged samples skipped with the reason when the run has no judge; with one, a sample whose longest
    answer the judge's window cannot hold refuses the run, before the store is touched."""
    kept = []
    for item in work:
        if item.skip is None and needs_judge(item.sample):
            if judge is None:
                item = dataclasses.replace(item, skip=NO_JUDGE)
            else:
                try:
                    check_fits(judge, item.sample)
                except JudgeWindowError as exc:
                    raise UsageError(f"{item.sample.id}: {exc}") from None
        kept.append(item)
    return kept


def grade_results(judge: Judge | None, item: Prepared, results: list[Result]) -> list[Result]:
    """The answered rows of a judged sample with the judge's grades, and those of a sample that cites documents
    with its citation scores (by its NLI model or the judge); every other row as it came."""
    results = check_citations(judge, item.sample, results)
    if judge is None or not needs_judge(item.sample):
        return results
    return [grade_row(judge, row, item.sample) if row.status == "ok" else row for row in results]

"""The driver of a run: check the configuration, plan and prepare the work, hand it to an executor, and write
every row it gets back into the run store (the only writer)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from longscope import rows, trace
from longscope.analysis.scores import Summary, summarise
from longscope.backends import parse_uri, resolve
from longscope.config import RunConfig
from longscope.core import Backend, Result, UsageError
from longscope.executors.base import Executor
from longscope.executors.local import LocalExecutor
from longscope.judging.prompts import PROMPTS
from longscope.judging.setup import check_judge_uri, grade_results, judge_work, make_judge, refuse_unjudged
from longscope.methods import Method, parse_methods
from longscope.plan import Prepared, Rejected, check_plan, measure_planes, plan, prepare
from longscope.retrieval import RETRIEVERS
from longscope.run_lock import holding_run_dir
from longscope.store import RunStore
from longscope.tasks import Task, make_task
from longscope.truncation import check_policy


def validate(config: RunConfig) -> tuple[list[Task], list[Method]]:
    """Every check that needs no model: the URI, tasks, methods, ranges; a UsageError before anything loads."""
    config.validate()
    parse_uri(config.model)
    tasks = [make_task(spec).with_data(config.data) for spec in config.tasks]
    reading = [task for task in tasks if (task.published and not task.built_in_records) or task.reads_data]
    if config.data is not None and not reading:
        raise UsageError(
            "--data gives records for published benchmarks, and no --tasks names one (e.g. longbench:hotpotqa)"
        )
    if config.limit is not None:
        tasks = [task.with_limit(config.limit) for task in tasks]
    if config.truncation is not None:
        check_policy(config.truncation)
    if config.judge is not None:
        check_judge_uri(config.judge)
    refuse_unjudged(tasks, config.judge)
    return tasks, parse_methods(",".join(config.methods))


def identity(backend: Backend) -> str:
    return f"{backend.kind}:{backend.model_name}@{backend.model_revision}"


@holding_run_dir  # one run at a time per directory, from the first check to the last row
def run(
    config: RunConfig,
    out_dir: Path,
    *,
    backend: Backend | None = None,
    executor: Executor | None = None,
    show_progress: bool = True,
    add: bool = False,
    plane_retrievers: tuple[str, ...] = RETRIEVERS,
    judge_backend: Backend | None = None,
) -> Summary:
    """Run (or resume) the plan into ``out_dir``. Bad input raises UsageError before any sample runs, and
    before the store is created or touched. A run directory tells one story: the same plan resumes; another
    plan is refused unless ``add`` says to add its rows, and then every invocation is recorded so the re-run
    commands reproduce all rows. ``plane_retrievers``: the retrievers that measure each sample's diffusion
    (none: the plane stays declared)."""
    tasks, methods = validate(config)
    meta, done = RunStore.prepare(out_dir)
    invocations = _invocations(meta)
    same = [old for old in invocations if not config.plan_differences(old)]
    if invocations and not same and not add:
        raise UsageError(
            f"{out_dir} holds another plan ({config.plan_differences(invocations[-1])[0]}); give another --out, "
            "or add --add to put these rows into that run beside the others"
        )
    if not same:
        invocations = [*invocations, config.as_dict()]
    previous = meta.get("model")
    trace.point("model-load")
    backend = backend or resolve(config.model)
    model_id = identity(backend)
    if previous is not None and previous != model_id:
        raise UsageError(
            f"{out_dir} holds results of {previous}, not {model_id}; give another --out for this model"
        )
    check_plan(tasks, methods, config, backend)
    judge = None if config.judge is None else make_judge(config.judge, judge_backend)
    items = plan(tasks, config, methods)
    work = measure_planes(prepare(items, backend, config, done), plane_retrievers)
    work = judge_work(work, judge)
    rejected = [Rejected(task, ref, reason) for task in tasks for ref, reason in task.rejected()]

    store = RunStore.open(out_dir, create=True)
    try:
        store.set_meta("model", model_id)
        store.set_meta("config", config.as_dict())
        store.set_meta("invocations", invocations)
        store.set_meta("state", "running")
        if judge is not None:
            store.set_meta(
                "judge", judge.describe() | {"prompts": {n: p.as_dict() for n, p in PROMPTS.items()}}
            )
        for record in rejected:
            store.write(*rows.rejected(record, backend, config.mode, methods[0]))
        to_run = [item for item in work if item.skip is None]
        for item in work:
            if item.skip is not None:
                for row in rows.skipped(item, backend):
                    store.write(row, item.sample)
        with _Progress(to_run, total=len(items), show=show_progress) as progress:

            def on_done(item: Prepared, results: list[Result]) -> None:
                # Grading happens here, on the driver, for every executor: rows from Ray workers too.
                results = grade_results(judge, item, results)
                for result in results:
                    store.write(result, item.sample)
                progress.advance(item, results)
                trace.point("sample-done")

            (executor or LocalExecutor()).run(
                to_run, backend, retries=config.retries, attempts=store.attempts(), on_done=on_done
            )
        store.set_meta("state", "complete")
        return summarise(store.results(), config.threshold)
    finally:
        store.close()


def _invocations(meta: dict) -> list[dict]:
    """Every configuration that wrote into a run, in order (a run written before they were recorded has its
    one configuration)."""
    recorded = meta.get("invocations")
    if isinstance(recorded, list):
        return recorded
    return [meta["config"]] if isinstance(meta.get("config"), dict) else []


class _Progress:
    """The run's progress bar: it advances by tokens, so its ETA weighs a 4k sample four times a 1k one."""

    def __init__(self, work: list[Prepared], *, total: int, show: bool) -> None:
        self.done = total - len(work)
        self.total = total
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[samples]} samples"),
            TextColumn("{task.fields[rate]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not show,
        )
        self.tokens = max(1, sum(item.tokens for item in work))
        self.processed = 0
        self.started = time.perf_counter()

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        self.task = self.bar.add_task(
            "running", total=self.tokens, samples=f"{self.done}/{self.total}", rate="-"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def advance(self, item: Prepared, results: list[Result]) -> None:
        self.done += 1
        self.processed += sum((r.input_tokens or 0) + (r.output_tokens or 0) for r in results)
        elapsed = time.perf_counter() - self.started
        self.bar.update(
            self.task,
            advance=item.tokens,
            samples=f"{self.done}/{self.total}",
            rate=f"{self.processed / elapsed:,.0f}" if elapsed > 0 else "-",
        )

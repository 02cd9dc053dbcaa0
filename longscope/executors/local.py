"""Run planned samples one after another in this process, writing each result as it finishes."""

from __future__ import annotations

import json
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from longscope.core import Backend, Generation, GenerationRequest, Result, Sample
from longscope.methods.base import Method
from longscope.methods.kv.full import Full
from longscope.scoring import score_with_details
from longscope.store import RunStore
from longscope.tasks.base import Task

MODES = ("independent", "multi-request", "multi-turn")


@dataclass(frozen=True)
class WorkItem:
    """One sample run under one method in one session mode: a row per turn."""

    task: Task
    length: int
    depth: float | None
    seed: int
    method: Method = Full()
    mode: str = "independent"

    def key(self, turn: int = 0) -> str:
        # Independent rows keep the key runs had before modes existed, so those runs still resume.
        base = f"{self.task.sample_id(self.length, self.depth, self.seed)}|{self.method.label()}|t{turn}"
        return base if self.mode == "independent" else f"{base}|{self.mode}"


def _result(item: WorkItem, sample: Sample, backend: Backend, attempts: int, turn: int = 0) -> Result:
    return Result(
        key=item.key(turn),
        sample_id=sample.id,
        task=sample.task,
        length=item.length or int(sample.metadata.get("length_bucket", 0)),
        depth=_turn_depth(item, sample, turn),
        seed=item.seed,
        turn=turn,
        status="failed",
        attempts=attempts,
        backend=backend.kind,
        model=backend.model_name,
        model_revision=backend.model_revision,
        method=item.method.label(),
        mode=item.mode,
        realised_tokens=sample.metadata.get("realised_tokens"),
        truncation=sample.metadata.get("truncation", "none"),
        diffusion=item.task.diffusion,
        scope=item.task.scope,
    )


def _turn_depth(item: WorkItem, sample: Sample, turn: int) -> float | None:
    """Where this turn's needle sits when the task recorded it per turn, else the sample's depth."""
    depths = sample.metadata.get("turn_depths")
    if item.depth is not None and isinstance(depths, list) and turn < len(depths):
        return depths[turn]
    return item.depth


def skipped_result(
    item: WorkItem, sample: Sample, backend: Backend, reason: str = "", turn: int = 0
) -> Result:
    """The row of a sample that is not run (its truncation policy skipped it, its record was invalid): counted
    apart, never scored as zero."""
    result = _result(item, sample, backend, attempts=0, turn=turn)
    result.status = "skipped"
    result.error = reason or "longer than the model window; truncation policy skip"
    return result


# Scorers that want every gold answer of a turn; a multi-turn reply then names them all.
ALL_ANSWERS_METRICS = ("contains_all", "substring_all", "numbered_items", "order")


def turn_request(item: WorkItem, sample: Sample, turn: int) -> GenerationRequest:
    return sample.request(
        turn, conversation=item.mode == "multi-turn", all_answers=item.task.metric in ALL_ANSWERS_METRICS
    )


def _uses_session(item: WorkItem, backend: Backend) -> bool:
    """In process, every method and every shared-context mode runs through a KV session; ``full`` asked
    independently is plain generation (one prefill of the whole prompt), as on every other backend."""
    if not callable(getattr(backend, "session", None)):
        return False
    return not (isinstance(item.method, Full) and item.mode == "independent")


def run_one(
    item: WorkItem, sample: Sample, backend: Backend, retries: int, attempts_before: dict[str, int]
) -> list[Result]:
    """Generate and score every turn of one sample; an exception is retried, then recorded as a failed row,
    never dropped. A shared session that failed is started again, so a retry never sees a half-updated cache."""
    results = []
    in_session = _uses_session(item, backend)
    shared = item.mode != "independent"
    session = None
    for turn in range(len(sample.turns)):
        request = turn_request(item, sample, turn)
        error = ""
        before = attempts_before.get(item.key(turn), 0)
        for attempt in range(1, retries + 2):
            try:
                if in_session:
                    if session is None or not shared:
                        session = backend.session(item.method)
                    keep = "prompt" if item.mode == "multi-turn" else "context"
                    generation: Generation = session.ask(request, keep=keep)
                else:
                    generation = backend.generate(request)
            except Exception as exc:  # noqa: BLE001 - any failure of one sample becomes a row, not a crash
                error = f"{type(exc).__name__}: {exc}".strip()
                session = None
                continue
            result = _result(item, sample, backend, before + attempt, turn)
            result.status = "ok"
            result.prediction = generation.text
            result.score, details = score_with_details(
                item.task.metric, generation.text, sample.turns[turn].answers, sample.metadata
            )
            result.details = json.dumps(details, sort_keys=True) if details else None
            for name in ("input_tokens", "output_tokens", "prefill_s", "decode_s", "wall_s", "kv_bytes",
                         "peak_memory_bytes", "finish_reason", "retries", "kv_removed", "kv_masked",
                         "kv_entries"):  # fmt: skip
                setattr(result, name, getattr(generation, name))
            results.append(result)
            break
        else:
            result = _result(item, sample, backend, before + retries + 1, turn)
            result.error = error[:2000]
            results.append(result)
    return results


def _tokens(item: WorkItem, sample: Sample) -> int:
    return int(sample.metadata.get("realised_tokens") or item.length) * len(sample.turns)


def execute(
    work: list[tuple[WorkItem, Sample]],
    backend: Backend,
    store: RunStore,
    *,
    retries: int,
    total: int,
    show_progress: bool = True,
) -> None:
    """Run the work with up to ``backend.max_concurrency`` requests in flight (an HTTP server batches them;
    in-process backends run one at a time). Workers only generate and score; every row is written here, on
    the thread that owns the SQLite connection, as soon as its sample finishes, so each submitted sample ends
    in exactly one write. The progress bar advances by tokens, so its ETA weighs a 4k sample four times a 1k.
    """
    workers = max(1, int(getattr(backend, "max_concurrency", 1) or 1))
    attempts = store.attempts()
    done_before = total - len(work)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[samples]} samples"),
        TextColumn("{task.fields[rate]} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
    )
    started = time.perf_counter()
    processed = finished = 0
    total_tokens = max(1, sum(_tokens(item, sample) for item, sample in work))
    pool = (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="longscope-sample")
        if workers > 1
        else None
    )
    try:
        with progress:
            bar = progress.add_task("running", total=total_tokens, samples=f"{done_before}/{total}", rate="-")

            def record(item: WorkItem, sample: Sample, results: list[Result]) -> None:
                nonlocal processed, finished
                for result in results:
                    store.write(result, sample)
                    processed += (result.input_tokens or 0) + (result.output_tokens or 0)
                finished += 1
                elapsed = time.perf_counter() - started
                progress.update(
                    bar,
                    advance=_tokens(item, sample),
                    samples=f"{done_before + finished}/{total}",
                    rate=f"{processed / elapsed:,.0f}" if elapsed > 0 else "-",
                )

            if pool is None:
                for item, sample in work:
                    record(item, sample, run_one(item, sample, backend, retries, attempts))
                return
            # Only as many samples in flight as workers: an interrupted run loses at most those, and the
            # plan's order (every length early) is kept.
            queue = iter(work)
            pending: dict[Future[list[Result]], tuple[WorkItem, Sample]] = {}

            def submit_next() -> None:
                following = next(queue, None)
                if following is not None:
                    item, sample = following
                    future = pool.submit(run_one, item, sample, backend, retries, attempts)
                    pending[future] = following

            for _ in range(workers):
                submit_next()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item, sample = pending.pop(future)
                    record(item, sample, future.result())
                    submit_next()
    finally:
        if pool is not None:
            # On an interrupt, samples not yet started stay to do on resume; those in flight are not written.
            pool.shutdown(wait=False, cancel_futures=True)

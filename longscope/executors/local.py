"""Run planned samples one after another in this process, writing each result as it finishes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from longscope.core import Backend, Generation, Result, Sample
from longscope.scoring import score_with_details
from longscope.store import RunStore
from longscope.tasks.base import Task

METHOD = "full"


@dataclass(frozen=True)
class WorkItem:
    task: Task
    length: int
    depth: float | None
    seed: int

    @property
    def key(self) -> str:
        return f"{self.task.sample_id(self.length, self.depth, self.seed)}|{METHOD}|t0"


def _result(item: WorkItem, sample: Sample, backend: Backend, attempts: int) -> Result:
    return Result(
        key=item.key,
        sample_id=sample.id,
        task=sample.task,
        length=item.length,
        depth=item.depth,
        seed=item.seed,
        turn=0,
        status="failed",
        attempts=attempts,
        backend=backend.kind,
        model=backend.model_name,
        method=METHOD,
        realised_tokens=sample.metadata.get("realised_tokens"),
        truncation=sample.metadata.get("truncation", "none"),
        diffusion=item.task.diffusion,
        scope=item.task.scope,
    )


def skipped_result(item: WorkItem, sample: Sample, backend: Backend) -> Result:
    """The row of a sample its truncation policy skipped: counted apart, never scored as zero."""
    result = _result(item, sample, backend, attempts=0)
    result.status = "skipped"
    result.error = "longer than the model window; truncation policy skip"
    return result


def run_one(item: WorkItem, sample: Sample, backend: Backend, retries: int, attempts_before: int) -> Result:
    """Generate and score one sample; an exception is retried, then recorded as a failed row, never dropped."""
    error = ""
    for attempt in range(1, retries + 2):
        try:
            generation: Generation = backend.generate(sample.request())
        except Exception as exc:  # noqa: BLE001 - any failure of one sample becomes a row, not a crash
            error = f"{type(exc).__name__}: {exc}".strip()
            continue
        result = _result(item, sample, backend, attempts_before + attempt)
        result.status = "ok"
        result.prediction = generation.text
        result.score, details = score_with_details(item.task.metric, generation.text, sample.answers)
        result.details = json.dumps(details, sort_keys=True) if details else None
        for name in ("input_tokens", "output_tokens", "prefill_s", "decode_s", "wall_s", "kv_bytes",
                     "peak_memory_bytes", "finish_reason"):  # fmt: skip
            setattr(result, name, getattr(generation, name))
        return result
    result = _result(item, sample, backend, attempts_before + retries + 1)
    result.error = error[:2000]
    return result


def execute(
    work: list[tuple[WorkItem, Sample]],
    backend: Backend,
    store: RunStore,
    *,
    retries: int,
    total: int,
    show_progress: bool = True,
) -> None:
    """The progress bar advances by tokens, so its ETA weighs a 4k sample four times a 1k one."""
    attempts = store.attempts()
    done_before = total - len(work)
    tokens_total = sum(int(s.metadata.get("realised_tokens") or item.length) for item, s in work)
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
    processed = 0
    with progress:
        bar = progress.add_task(
            "running", total=max(1, tokens_total), samples=f"{done_before}/{total}", rate="-"
        )
        for index, (item, sample) in enumerate(work, start=1):
            result = run_one(item, sample, backend, retries, attempts.get(item.key, 0))
            store.write(result, sample)
            processed += (result.input_tokens or 0) + (result.output_tokens or 0)
            elapsed = time.perf_counter() - started
            progress.update(
                bar,
                advance=int(sample.metadata.get("realised_tokens") or item.length),
                samples=f"{done_before + index}/{total}",
                rate=f"{processed / elapsed:,.0f}" if elapsed > 0 else "-",
            )

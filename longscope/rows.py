"""Result rows: the one place a row is made, for answered, failed, skipped and rejected samples alike."""

from __future__ import annotations

import json

from longscope.core import Backend, Generation, Result, Sample, Turn
from longscope.measured_plane import SamplePlane
from longscope.plan import Prepared, Rejected, WorkItem
from longscope.scoring.output_measures import output_words, repetition

# What a row copies from the backend's answer: tokens, timings, memory, and the cache the method left.
_MEASURED = (
    "input_tokens", "output_tokens", "prefill_s", "decode_s", "wall_s", "kv_bytes", "peak_memory_bytes",
    "finish_reason", "retries", "kv_removed", "kv_masked", "kv_entries", "calls", "reused_tokens",
    "retrieval_recall", "kv_bytes_loaded", "attention_flops_skipped",
)  # fmt: skip


def _row(
    key: str,
    item: WorkItem,
    sample: Sample,
    backend: Backend,
    turn: int,
    status: str,
    plane: SamplePlane | None = None,
) -> Result:
    row = Result(
        key=key,
        sample_id=sample.id,
        task=sample.task,
        length=item.length or int(sample.metadata.get("length_bucket", 0)),
        depth=_turn_depth(item, sample, turn),
        seed=item.seed,
        turn=turn,
        status=status,
        attempts=0,
        backend=backend.kind,
        model=backend.model_name,
        model_revision=backend.model_revision,
        method=item.method.label(),
        mode=item.mode,
        realised_tokens=sample.metadata.get("realised_tokens"),
        truncation=sample.metadata.get("truncation", "none"),
        diffusion=item.task.diffusion,
        scope=item.task.scope,
        past_window=item.length > backend.context_window if item.length else None,
        weight_precision=getattr(backend, "precision", None) or None,
    )
    if plane is not None:
        for name, value in plane.turn(turn).items():
            setattr(row, name, value)
    return row


def _turn_depth(item: WorkItem, sample: Sample, turn: int) -> float | None:
    """Where this turn's needle sits when the task recorded it per turn, else the sample's depth."""
    depths = sample.metadata.get("turn_depths")
    if item.depth is not None and isinstance(depths, list) and turn < len(depths):
        return depths[turn]
    return item.depth


def answered(
    work: Prepared,
    backend: Backend,
    turn: int,
    attempts: int,
    generation: Generation,
    score: float,
    details: dict,
) -> Result:
    row = _row(work.item.key(turn), work.item, work.sample, backend, turn, "ok", work.plane)
    row.attempts = attempts
    row.prediction = generation.text
    row.score = score
    row.details = json.dumps(details, sort_keys=True) if details else None
    row.output_words = output_words(generation.text)
    row.repetition = repetition(generation.text)
    for name in _MEASURED:
        setattr(row, name, getattr(generation, name))
    return row


def failed(work: Prepared, backend: Backend, turn: int, attempts: int, error: str) -> Result:
    """A turn that raised on every attempt: kept as a row with its error, retried on the next run."""
    row = _row(work.item.key(turn), work.item, work.sample, backend, turn, "failed", work.plane)
    row.attempts = attempts
    row.error = error[:2000]
    return row


def skipped(work: Prepared, backend: Backend) -> list[Result]:
    """The rows of a sample that is not run, one per turn, with the reason: counted apart, never scored."""
    rows = []
    for turn in range(work.turns):
        row = _row(work.item.key(turn), work.item, work.sample, backend, turn, "skipped", work.plane)
        row.error = work.skip or "longer than the model window; truncation policy skip"
        rows.append(row)
    return rows


def rejected(record: Rejected, backend: Backend, mode: str, method) -> tuple[Result, Sample]:
    """A record the loader could not use, as a skipped row naming the record and why; its stand-in sample
    has no length, so the row stays out of the length columns and is counted with its benchmark."""
    task = record.task
    sample = Sample(
        id=f"{task.label()}/{record.ref}",
        task=task.label(),
        context="",
        turns=(Turn(question="", answers=()),),
        template="{context}{question}",
        max_new_tokens=0,
        metadata={
            "record": record.ref,
            "rejected": record.reason,
            "truncation": "none",
            "benchmark": task.name,
            "subset": getattr(task, "subset", ""),
        },
    )
    item = WorkItem(task=task, length=0, depth=None, seed=0, method=method, mode=mode)
    # Keyed by the record, not by a work item: a loader with no valid record has no sample id to derive from.
    row = _row(f"{sample.id}|rejected", item, sample, backend, 0, "skipped")
    row.error = f"invalid record {record.ref}: {record.reason}"
    row.method = "full"
    return row, sample

"""Plan a run (tasks × lengths × depths × seeds), check it before any work, build its samples, and execute it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.analysis.summary import Summary, summarise
from longscope.backends import parse_uri, resolve
from longscope.core import Backend, Sample, UsageError
from longscope.executors.local import WorkItem, execute, skipped_result
from longscope.store import RunStore
from longscope.tasks import Task, cached_sample, make_task, split_list
from longscope.truncation import check_policy, truncate

DEFAULT_TASKS = ("niah", "niah_multikey", "niah_multivalue", "niah_multiquery")
DEFAULT_LENGTHS = (1024, 2048, 4096)
DEFAULT_DEPTHS = (0.25, 0.75)


@dataclass
class RunConfig:
    """Everything that decides what a run computes; stored with the run so that others can re-run it."""

    model: str = "smollm2"
    suite: str | None = None
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    lengths: list[int] = field(default_factory=lambda: list(DEFAULT_LENGTHS))
    depths: list[float] = field(default_factory=lambda: list(DEFAULT_DEPTHS))
    samples: int = 1
    seed: int = 0
    retries: int = 1
    threshold: float = DEFAULT_THRESHOLD
    truncation: str = "middle"  # for samples above the model window: middle, left, right or skip


_LENGTH = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_lengths(text: str) -> list[int]:
    """``1k,2k,4k`` → [1024, 2048, 4096]; k and m are binary multiples, as in RULER's length grid."""
    lengths = []
    for item in split_list(text):
        match = _LENGTH.match(item)
        if not match:
            raise UsageError(f"cannot read length {item!r}; write numbers of tokens like 1000, 4k or 1.5k")
        scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
        value = float(match.group(1)) * scale
        if value != int(value) or value < 1:
            raise UsageError(f"length {item!r} is not a whole, positive number of tokens")
        lengths.append(int(value))
    if not lengths:
        raise UsageError("no lengths given; write for example --lengths 1k,2k,4k")
    return sorted(set(lengths))


def parse_depths(text: str) -> list[float]:
    depths = []
    for item in split_list(text):
        try:
            value = float(item)
        except ValueError:
            raise UsageError(
                f"cannot read depth {item!r}; write fractions between 0 and 1, like 0,0.5,1"
            ) from None
        if not 0.0 <= value <= 1.0:
            raise UsageError(
                f"depth {value:g} is outside [0, 1]; 0 is the start of the context and 1 its end"
            )
        depths.append(value)
    if not depths:
        raise UsageError("no depths given; write for example --depths 0,0.5,1")
    return sorted(set(depths))


def plan(tasks: list[Task], config: RunConfig) -> list[WorkItem]:
    """The cross product, in an order that fills every length early (so a stopped run is still useful)."""
    items = []
    for seed in range(config.seed, config.seed + config.samples):
        for length in config.lengths:
            for task in tasks:
                for depth in config.depths if task.uses_depth else [None]:
                    items.append(WorkItem(task=task, length=length, depth=depth, seed=seed))
    return items


def _validate(config: RunConfig) -> list[Task]:
    parse_uri(config.model)
    if not config.tasks:
        raise UsageError("no tasks given; `longscope tasks` lists them")
    tasks = [make_task(spec) for spec in config.tasks]
    if config.samples < 1:
        raise UsageError(f"--samples must be at least 1 (got {config.samples})")
    check_policy(config.truncation)
    if config.retries < 0:
        raise UsageError(f"--retries must be 0 or more (got {config.retries})")
    for depth in config.depths:
        if not 0.0 <= depth <= 1.0:
            raise UsageError(f"depth {depth:g} is outside [0, 1]")
    return tasks


def identity(backend: Backend) -> str:
    return f"{backend.kind}:{backend.model_name}@{backend.model_revision}"


def run(
    config: RunConfig,
    out_dir: Path,
    *,
    backend: Backend | None = None,
    show_progress: bool = True,
) -> Summary:
    """Run (or resume) the plan into ``out_dir``. Bad input raises UsageError before any sample runs."""
    tasks = _validate(config)
    meta, done = RunStore.prepare(out_dir)
    previous = meta.get("model")
    backend = backend or resolve(config.model)
    model_id = identity(backend)
    if previous is not None and previous != model_id:
        raise UsageError(
            f"{out_dir} holds results of {previous}, not {model_id}; give another --out for this model"
        )
    too_long = [length for length in config.lengths if length > backend.context_window]
    if too_long:
        raise UsageError(
            f"length {too_long[0]} is above the context window of {backend.model_name} "
            f"({backend.context_window} tokens); use lengths up to {backend.context_window}"
        )
    for task in tasks:
        for length in config.lengths:
            task.check(backend, length)

    items = plan(tasks, config)
    todo = [item for item in items if item.key not in done]
    # Every sample is built before the first one runs: a task that cannot fit fails the run up front,
    # before the store is created or touched.
    samples: list[tuple[WorkItem, Sample]] = []
    skipped: list[tuple[WorkItem, Sample]] = []
    for item in todo:
        sample = cached_sample(item.task, backend, item.length, item.depth, item.seed)
        fits = sample.metadata.get("realised_tokens", backend.context_window + 1) <= backend.context_window
        if not fits:  # only samples of published data can be longer than the window the run was checked for
            kept, _ = truncate(backend, sample, backend.context_window, config.truncation)
            if kept is None:
                skipped.append(
                    (item, dataclasses.replace(sample, metadata={**sample.metadata, "truncation": "skip"}))
                )
                continue
            sample = kept
        samples.append((item, sample))
    store = RunStore.open(out_dir, create=True)
    try:
        store.set_meta("model", model_id)
        store.set_meta("config", dataclasses.asdict(config))
        store.set_meta("state", "running")
        for item, sample in skipped:
            store.write(skipped_result(item, sample, backend), sample)
        execute(
            samples, backend, store, retries=config.retries, total=len(items), show_progress=show_progress
        )
        store.set_meta("state", "complete")
        return summarise(store.results(), config.threshold)
    finally:
        store.close()

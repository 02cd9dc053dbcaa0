"""Plan a run (tasks × lengths × depths × seeds), check it before any work, build its samples, and execute it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.analysis.summary import Summary, summarise
from longscope.backends import parse_uri, resolve
from longscope.core import Backend, Result, Sample, Turn, UsageError
from longscope.executors.local import MODES, WorkItem, execute, skipped_result, turn_request
from longscope.methods import Method, parse_methods
from longscope.methods.kv.full import Full
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
    # For samples above the model window: middle, left, right or skip; None: each task's own rule (a
    # published benchmark's, middle for the rest).
    truncation: str | None = None
    methods: list[str] = field(default_factory=lambda: ["full"])
    mode: str = (
        "independent"  # how a sample's turns share its context: independent, multi-request, multi-turn
    )
    data: str | None = None  # a file or directory of published benchmark records
    limit: int | None = None  # at most this many records per published benchmark (subset)


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


def plan(tasks: list[Task], config: RunConfig, methods: list[Method] | None = None) -> list[WorkItem]:
    """The cross product, in an order that fills every length early (so a stopped run is still useful), with
    every method of one sample next to each other (so a stopped run still compares methods on the same samples).
    A published benchmark contributes one point per record instead of lengths × depths × seeds."""
    methods = methods or [Full()]
    seeds = list(range(config.seed, config.seed + config.samples))
    points = []
    for order, task in enumerate(tasks):
        for length, depth, seed in task.work(config.lengths, config.depths, seeds):
            points.append(
                ((seed, length, order, -1.0 if depth is None else depth), task, length, depth, seed)
            )
    points.sort(key=lambda point: point[0])
    return [
        WorkItem(task=task, length=length, depth=depth, seed=seed, method=method, mode=config.mode)
        for _, task, length, depth, seed in points
        for method in methods
    ]


def _validate(config: RunConfig) -> tuple[list[Task], list[Method]]:
    parse_uri(config.model)
    if not config.tasks:
        raise UsageError("no tasks given; `longscope tasks` lists them")
    tasks = [make_task(spec).with_data(config.data) for spec in config.tasks]
    if config.data is not None and not any(task.published or task.reads_data for task in tasks):
        raise UsageError(
            "--data gives records for published benchmarks, and no --tasks names one (e.g. longbench:hotpotqa)"
        )
    if config.samples < 1:
        raise UsageError(f"--samples must be at least 1 (got {config.samples})")
    if config.limit is not None:
        if config.limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {config.limit})")
        tasks = [task.with_limit(config.limit) for task in tasks]
    if config.truncation is not None:
        check_policy(config.truncation)
    if config.retries < 0:
        raise UsageError(f"--retries must be 0 or more (got {config.retries})")
    if config.mode not in MODES:
        raise UsageError(f"unknown mode {config.mode!r}; choose one of {', '.join(MODES)}")
    for depth in config.depths:
        if not 0.0 <= depth <= 1.0:
            raise UsageError(f"depth {depth:g} is outside [0, 1]")
    methods = parse_methods(",".join(config.methods)) if config.methods else [Full()]
    return tasks, methods


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
    tasks, methods = _validate(config)
    meta, done = RunStore.prepare(out_dir)
    previous = meta.get("model")
    backend = backend or resolve(config.model)
    model_id = identity(backend)
    if previous is not None and previous != model_id:
        raise UsageError(
            f"{out_dir} holds results of {previous}, not {model_id}; give another --out for this model"
        )
    for method in methods:
        method.check_backend(backend)
    # A method that reads past the trained window (attention sinks + a local window) may be given longer
    # lengths; the other methods then get skipped rows at those lengths.
    beyond = any(method.extends_window for method in methods)
    synthetic = [task for task in tasks if not task.published]
    too_long = [length for length in config.lengths if length > backend.context_window]
    if too_long and synthetic and not beyond:
        raise UsageError(
            f"length {too_long[0]} is above the context window of {backend.model_name} "
            f"({backend.context_window} tokens); use lengths up to {backend.context_window}"
        )
    for task in synthetic:
        for length in config.lengths:
            task.check(backend, length)

    items = plan(tasks, config, methods)
    # Every sample is built before the first one runs: a task that cannot fit, a budget above a context, fail
    # the run up front, before the store is created or touched.
    samples: list[tuple[WorkItem, Sample]] = []
    skipped: list[tuple[WorkItem, Sample, str]] = []
    built: dict[tuple, Sample] = {}
    for item in items:
        if item.key(0) in done and not item.task.published and not item.task.multi_turn:
            continue  # finished before: a one-turn synthetic sample need not even be read back
        where = (item.task, item.length, item.depth, item.seed)
        if where not in built:
            built[where] = cached_sample(item.task, backend, item.length, item.depth, item.seed)
        sample = built[where]
        if all(item.key(turn) in done for turn in range(len(sample.turns))):
            continue
        if item.mode == "multi-turn":
            _check_turns(sample, item)
        realised = sample.metadata.get("realised_tokens", backend.context_window + 1)
        if realised > backend.context_window and not item.method.extends_window:
            policy = config.truncation or getattr(item.task, "truncation", None) or "middle"
            if not item.task.published and config.truncation is None:
                skipped.append(
                    (item, sample, "longer than the model window (run for a method that reads past it)")
                )
                continue
            kept, _ = truncate(backend, sample, backend.context_window, policy)
            if kept is None:
                reason = "longer than the model window; truncation policy skip"
                skipped.append(
                    (
                        item,
                        dataclasses.replace(sample, metadata={**sample.metadata, "truncation": "skip"}),
                        reason,
                    )
                )
                continue
            sample = kept
        if len(sample.turns) > 1 and not item.method.extends_window:
            over = _turn_over_window(backend, item, sample)
            if over is not None:
                skipped.append((item, sample, over))
                continue
        if item.method.budget is not None:
            item.method.check_context(len(backend.encode(sample.context)), sample.id)
        samples.append((item, sample))
    rejected = [(task, ref, reason) for task in tasks for ref, reason in task.rejected()]
    store = RunStore.open(out_dir, create=True)
    try:
        store.set_meta("model", model_id)
        store.set_meta("config", dataclasses.asdict(config))
        store.set_meta("state", "running")
        for item, sample, reason in skipped:
            for turn in range(len(sample.turns)):
                store.write(skipped_result(item, sample, backend, reason, turn), sample)
        for task, ref, reason in rejected:
            store.write(*_rejected_row(task, ref, reason, backend, config))
        execute(
            samples, backend, store, retries=config.retries, total=len(items), show_progress=show_progress
        )
        store.set_meta("state", "complete")
        return summarise(store.results(), config.threshold)
    finally:
        store.close()


def _turn_over_window(backend: Backend, item: WorkItem, sample: Sample) -> str | None:
    """Later turns carry other questions (and in multi-turn mode the conversation so far): a turn that no
    longer fits the window makes the whole sample a skipped row with the reason, before anything runs."""
    for turn in range(1, len(sample.turns)):
        request = turn_request(item, sample, turn)
        need = backend.count_tokens(backend.render(request.messages, request.answer_prefix, request.chat))
        if need + sample.max_new_tokens > backend.context_window:
            return (
                f"turn {turn + 1} needs {need + sample.max_new_tokens} tokens in {item.mode} mode, above the "
                f"model window of {backend.context_window}; use a shorter length for multi-question samples"
            )
    return None


def _check_turns(sample: Sample, item: WorkItem) -> None:
    """Multi-turn replies with every earlier turn's gold answer, so each of those turns needs one."""
    if any(not turn.answers for turn in sample.turns[:-1]):
        raise UsageError(
            f"{sample.id}: multi-turn mode replies with each turn's gold answer, and a turn has none"
        )


def _rejected_row(
    task: Task, ref: str, reason: str, backend: Backend, config: RunConfig
) -> tuple[Result, Sample]:
    """A record the loader could not use: a skipped row that says which record and why, counted in the summary."""
    sample = Sample(
        id=f"{task.label()}/{ref}",
        task=task.label(),
        context="",
        turns=(Turn(question="", answers=()),),
        template="{context}{question}",
        max_new_tokens=0,
        metadata={
            "record": ref,
            "rejected": reason,
            "truncation": "none",
            "benchmark": task.name,
            "subset": getattr(task, "subset", ""),
        },
    )
    # Built directly: a loader with no valid record has no sample id to derive a work item's key from.
    result = Result(
        key=f"{sample.id}|rejected",
        sample_id=sample.id,
        task=sample.task,
        length=0,
        depth=None,
        seed=0,
        turn=0,
        status="skipped",
        attempts=0,
        error=f"invalid record {ref}: {reason}",
        backend=backend.kind,
        model=backend.model_name,
        model_revision=backend.model_revision,
        mode=config.mode,
        truncation="none",
        diffusion=task.diffusion,
        scope=task.scope,
    )
    return result, sample

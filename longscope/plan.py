"""The plan step: the cross product of a run, checked and built into work items every executor takes as they are.

One place decides, for every kind of task, what runs and what does not: the window check, truncation, skipped
rows with their reasons, turns that outgrow the window, and method budgets. Executors only answer and score.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from longscope.config import RunConfig
from longscope.core import Backend, Sample, UsageError
from longscope.measured_plane import SamplePlane, measure_sample
from longscope.methods.base import Method
from longscope.tasks import Task, cached_sample
from longscope.truncation import truncate

# Scorers that want every gold answer of a turn; a multi-turn reply then names them all.
ALL_ANSWERS_METRICS = ("contains_all", "substring_all", "numbered_items", "order")


@dataclass(frozen=True)
class WorkItem:
    """One sample run under one method in one session mode: a row per turn."""

    task: Task
    length: int
    depth: float | None
    seed: int
    method: Method
    mode: str = "independent"

    def key(self, turn: int = 0) -> str:
        # Independent rows keep the key runs had before modes existed, so those runs still resume.
        base = f"{self.task.sample_id(self.length, self.depth, self.seed)}|{self.method.label()}|t{turn}"
        return base if self.mode == "independent" else f"{base}|{self.mode}"

    @property
    def shared(self) -> bool:
        """Whether the sample's turns share one context state (prefilled once)."""
        return self.mode != "independent"

    def request(self, sample: Sample, turn: int, replies: list[str] | None = None):
        """The request of one turn: its own question, or (multi-turn) the conversation up to it; in the
        multi-turn-own mode the earlier replies are ``replies``, the model's own answers (the executor passes
        them as they come)."""
        own = None
        if self.mode == "multi-turn-own":
            # Before the answers exist (the plan's window check) the replies count as empty.
            own = list(replies or [])[:turn]
            own += [""] * (turn - len(own))
        return sample.request(
            turn,
            conversation=self.mode in ("multi-turn", "multi-turn-own"),
            all_answers=self.task.metric in ALL_ANSWERS_METRICS,
            replies=own,
        )


@dataclass(frozen=True)
class Prepared:
    """A work item with its built sample, ready for an executor; or, with ``skip``, a sample that is not run
    and becomes skipped rows carrying the reason."""

    item: WorkItem
    sample: Sample
    skip: str | None = None
    plane: SamplePlane | None = None  # scope and diffusion measured on the sample's evidence

    @property
    def turns(self) -> int:
        return len(self.sample.turns)

    @property
    def tokens(self) -> int:
        """What the progress bar weighs this item by: a 4k sample counts four times a 1k one."""
        return int(self.sample.metadata.get("realised_tokens") or self.item.length) * self.turns


@dataclass(frozen=True)
class Rejected:
    """A record a loader could not use: a skipped row that says which record and why."""

    task: Task
    ref: str
    reason: str


def plan(tasks: list[Task], config: RunConfig, methods: list[Method]) -> list[WorkItem]:
    """The cross product, in an order that fills every length early (so a stopped run is still useful), with
    every method of one sample next to each other (so a stopped run still compares methods on the same samples).
    A published benchmark contributes one point per record instead of lengths × depths × seeds."""
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


def check_plan(tasks: list[Task], methods: list[Method], config: RunConfig, backend: Backend) -> None:
    """What can be known wrong before any sample is built: a method the backend cannot run, a length above
    the window for tasks built to the run's lengths, parameters that cannot fit a length."""
    for method in methods:
        method.check_backend(backend)
        method.check_mode(config.mode)
    # A method that reads past the trained window may be given longer lengths; the other methods then get
    # skipped rows at those lengths.
    beyond = any(method.extends_window for method in methods)
    built_to_length = [task for task in tasks if not task.published]
    too_long = [length for length in config.lengths if length > backend.context_window]
    if too_long and built_to_length and not beyond:
        raise UsageError(
            f"length {too_long[0]} is above the context window of {backend.model_name} "
            f"({backend.context_window} tokens); use lengths up to {backend.context_window}"
        )
    if too_long and built_to_length:
        claims = {m.label(): m.extended_window(backend.context_window) for m in methods if m.extends_window}
        widest = max(claims, key=lambda label: claims[label] or 0)
        reach = claims[widest] or backend.context_window
        if max(too_long) > reach:
            raise UsageError(
                f"length {max(too_long)} is above the longest window any method claims on "
                f"{backend.model_name} ({reach} tokens, by {widest}, trained window "
                f"{backend.context_window}); use lengths up to {reach}"
            )
    for task in built_to_length:
        for length in config.lengths:
            task.check(backend, length)


def prepare(items: list[WorkItem], backend: Backend, config: RunConfig, done: set[str]) -> list[Prepared]:
    """Build every sample still to do, before the first one runs: a task that cannot fit or a budget above a
    context fails the run up front, before the store is created or touched. Finished rows are left out."""
    prepared: list[Prepared] = []
    built: dict[tuple, Sample] = {}
    for item in items:
        if item.key(0) in done and not item.task.multi_turn:
            continue  # finished before: a one-turn sample need not even be read back
        where = (item.task, item.length, item.depth, item.seed)
        if where not in built:
            built[where] = cached_sample(item.task, backend, item.length, item.depth, item.seed)
        sample = built[where]
        if all(item.key(turn) in done for turn in range(len(sample.turns))):
            continue
        prepared.append(_fit(item, sample, backend, config))
    return prepared


def measure_planes(work: list[Prepared], retrievers: tuple[str, ...]) -> list[Prepared]:
    """Each prepared sample with its measured scope and diffusion (once per sample, whatever the methods), where
    its generator recorded the evidence; ``retrievers`` empty measures nothing."""
    if not retrievers:
        return work
    planes: dict[tuple, SamplePlane | None] = {}
    measured = []
    for item in work:
        # A truncated sample is measured on what it still holds.
        key = (item.sample.id, item.sample.metadata.get("truncation"), len(item.sample.context))
        if key not in planes:
            planes[key] = measure_sample(item.sample, retrievers)
        measured.append(dataclasses.replace(item, plane=planes[key]))
    return measured


def _fit(item: WorkItem, sample: Sample, backend: Backend, config: RunConfig) -> Prepared:
    """The window check, truncation and skip of one sample, the same for synthetic and published tasks."""
    if item.mode == "multi-turn-own" and len(sample.turns) < 2:
        raise UsageError(
            f"mode multi-turn-own: {item.task.name} asks one question per sample ({sample.id}), so there is no "
            "earlier answer to carry; use it on a task with turns (scbench, niah_multikey(questions=5))"
        )
    if item.mode == "multi-turn" and any(not turn.answers for turn in sample.turns[:-1]):
        raise UsageError(
            f"{sample.id}: multi-turn mode replies with each turn's gold answer, and a turn has none"
        )
    realised = sample.metadata.get("realised_tokens", backend.context_window + 1)
    claimed = item.method.extended_window(backend.context_window)
    if claimed is not None and realised > claimed:
        # Another method in the plan reads further: this one gets skipped rows past its own window.
        return Prepared(
            item, sample, f"longer than the {claimed} tokens {item.method.label()} claims to read"
        )
    if realised > backend.context_window and not item.method.extends_window:
        # The user's policy, else the task's own (a benchmark's rule); a task built to the run's lengths has
        # none: it is above the window only because a method that reads past it is in the plan.
        policy = config.truncation or item.task.truncation
        if policy is None:
            return Prepared(
                item, sample, "longer than the model window (run for a method that reads past it)"
            )
        kept, _ = truncate(backend, sample, backend.context_window, policy)
        if kept is None:
            skipped = dataclasses.replace(sample, metadata={**sample.metadata, "truncation": "skip"})
            return Prepared(item, skipped, "longer than the model window; truncation policy skip")
        sample = kept
    if len(sample.turns) > 1 and not item.method.extends_window:
        over = _turn_over_window(backend, item, sample)
        if over is not None:
            return Prepared(item, sample, over)
    item.method.check_sample(sample, backend)
    return Prepared(item, sample)


def _turn_over_window(backend: Backend, item: WorkItem, sample: Sample) -> str | None:
    """Later turns carry other questions (and in multi-turn mode the conversation so far): a turn that no
    longer fits the window makes the whole sample a skipped row with the reason, before anything runs."""
    for turn in range(1, len(sample.turns)):
        request = item.request(sample, turn)
        need = backend.count_tokens(backend.render(request.messages, request.answer_prefix, request.chat))
        if need + sample.max_new_tokens > backend.context_window:
            return (
                f"turn {turn + 1} needs {need + sample.max_new_tokens} tokens in {item.mode} mode, above the "
                f"model window of {backend.context_window}; use a shorter length for multi-question samples"
            )
    return None

"""What every task is: parameters, a place on the difficulty plane, a metric, and cached exact-length samples."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.cache import atomic_write_text, cache_dir, stable_hash
from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import CORPORA, FittedContext, Needle, UnitSource, fit_context


@dataclass(frozen=True)
class Task:
    """A parameterised source of samples. Subclasses are dataclasses whose fields are the task's parameters.

    ``name`` is the registry name; ``diffusion`` and ``scope`` (both in [0, 1]) place the task on the
    difficulty plane: how hard the needed information is to find, and how much of the context is needed.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metric: ClassVar[str] = ""
    uses_depth: ClassVar[bool] = False
    # Sample metadata keys whose values the summary can break scores down by (`longscope show --by KEY`).
    breakdowns: ClassVar[tuple[str, ...]] = ()
    # Published data (a benchmark loader): one sample per record, as long as the record is, whatever the run's
    # lengths and depths; the record's index stands where a synthetic task's seed does.
    published: ClassVar[bool] = False
    # Reads records from --data though it fits them to the run's lengths (RULER's QA, NeedleBench's needles).
    reads_data: ClassVar[bool] = False
    # A published task whose records are built in (no --data file is read): --data alone is refused for it.
    built_in_records: ClassVar[bool] = False
    # The task's own rule for a sample above the model window (middle, left, right, skip). None: the task
    # builds samples to the run's lengths, so one is above the window only when a method in the plan reads
    # past it, and the other methods get skipped rows there.
    truncation: ClassVar[str | None] = None
    # Where a benchmark loader deliberately departs from the benchmark's official code, or keeps a quirk of it
    # that users would not expect (a short paragraph each), printed by `longscope tasks NAME`.
    departures: ClassVar[tuple[str, ...]] = ()
    # Whole-number parameters that count nothing laid in the prompt (a vocabulary drawn from, a level), so the
    # one-token-per-item bound in ``check`` does not apply to them.
    uncounted: ClassVar[tuple[str, ...]] = ()
    max_new_tokens: int = 64

    def work(
        self, lengths: list[int], depths: list[float], seeds: list[int]
    ) -> list[tuple[int, float | None, int]]:
        """The (length, depth, seed) points this task is run at; a loader returns one per valid record."""
        return [
            (length, depth, seed)
            for seed in seeds
            for length in lengths
            for depth in (depths if self.uses_depth else [None])
        ]

    def rejected(self) -> list[tuple[str, str]]:
        """Records that could not be used, as (record reference, reason): each becomes a skipped row."""
        return []

    def with_data(self, data: str | None) -> Task:
        """This task reading its records from ``data`` (the run's --data); synthetic tasks ignore it."""
        return self

    def with_limit(self, limit: int) -> Task:
        """This task using at most ``limit`` records (the run's --limit), unless its spec set its own."""
        if self.published and getattr(self, "limit", 0) is None:
            return dataclasses.replace(self, limit=limit)
        return self

    @property
    def multi_turn(self) -> bool:
        """Whether samples may carry several questions (a ``questions`` parameter above one)."""
        return int(getattr(self, "questions", 1) or 1) > 1

    @property
    def diffusion(self) -> float:
        raise NotImplementedError

    @property
    def scope(self) -> float:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        # One question is the default every task had before multi-question samples: leaving it out keeps
        # their seeds, cache keys and bytes as they were.
        if params.get("questions") == 1:
            del params["questions"]
        return params

    def label(self) -> str:
        """The name, plus any parameter that differs from the registered defaults: ``niah(haystack=noise)``."""
        defaults = type(self)()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        ]
        return self.name + (f"({','.join(changed)})" if changed else "")

    def sample_id(self, length: int, depth: float | None, seed: int) -> str:
        where = "" if depth is None else f"/d{depth:g}"
        return f"{self.label()}@{length}{where}/s{seed}"

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        """One sample whose whole request (template, prompt and output budget) is ``length`` tokens."""
        raise NotImplementedError

    def make_sample(
        self,
        backend: Backend,
        *,
        length: int,
        depth: float | None,
        seed: int,
        template: str,
        turns: list[Turn],
        source: UnitSource,
        start: int = 0,
        needles: list[Needle] | None = None,
        answers_after_fit: Callable[[FittedContext], list[tuple[str, ...]]] | None = None,
        metadata: dict[str, Any] | None = None,
        system: str | None = None,
        evidence: Sequence[str] | Callable[[FittedContext], Sequence[str]] | None = None,
    ) -> Sample:
        """Fit ``source`` units (plus needles) so the whole request is exactly ``length`` tokens, and wrap it.

        ``template`` holds ``{context}`` and ``{question}``. When the gold answers depend on how many units
        fitted (counts, orders, queries over rows), ``answers_after_fit`` returns one answer tuple per turn
        from the fitted context; the questions themselves must not depend on it, since they are part of the
        length.

        ``evidence`` names the context units the answers need (texts, or a function of the fitted context);
        by default every needle is evidence. ``EVERY_UNIT`` says the answer needs the whole context, ``NO_UNIT``
        that it needs none of it.
        """
        first = turns[0]

        def render(context: str) -> str:
            user = template.format(context=context, question=first.question)
            messages = ([] if system is None else [{"role": "system", "content": system}]) + [
                {"role": "user", "content": user}
            ]
            return backend.render(messages, first.answer_prefix)

        needles = needles or []
        fitted = fit_context(
            backend,
            lambda c: backend.count_tokens(render(c)),
            source,
            needles,
            length - self.max_new_tokens,
            start,
            render=render,
        )
        if answers_after_fit is not None:
            answers = answers_after_fit(fitted)
            turns = [
                dataclasses.replace(turn, answers=tuple(a)) for turn, a in zip(turns, answers, strict=True)
            ]
        meta = {
            "target_length": length,
            "prompt_tokens": fitted.prompt_tokens,
            "realised_tokens": fitted.prompt_tokens + self.max_new_tokens,
            "realised_chars": len(render(fitted.context)),
            "context_chars": len(fitted.context),
            "units": fitted.haystack_units,
            "depth": depth,
            "needle_depths": list(fitted.needle_depths),
            "seed": seed,
            "params": self.params(),
            "diffusion": self.diffusion,
            "scope": self.scope,
            "tokenizer": backend.tokenizer_fingerprint(),
            "truncation": "none",
        }
        if not backend.capabilities.exact_tokens:
            meta["approximate_tokens"] = True  # counted without the model's tokenizer: lengths are estimates
        meta.update(metadata or {})
        found = _evidence(evidence, needles, fitted)
        if found is EVERY_UNIT:
            meta["evidence"] = "every unit"
            found = ()
        elif found is NO_UNIT:
            meta["evidence"] = "no unit"
            found = ()
        return Sample(
            id=self.sample_id(length, depth, seed),
            task=self.label(),
            context=fitted.context,
            turns=tuple(turns),
            template=template,
            max_new_tokens=self.max_new_tokens,
            system=system,
            metadata=meta,
            evidence=found,
        )

    def rng(self, seed: int) -> random.Random:
        """Randomness that depends on the task, its parameters and the seed only, not on length or depth,
        so the same seed asks the same question at every length and depth and only the haystack differs."""
        return random.Random(int(stable_hash([self.name, self.params(), seed]), 16))

    def cache_token(self) -> str:
        """What else the sample depends on besides the parameters (a loader: its data file's hash)."""
        return ""

    def check_haystack(self) -> None:
        """One line for a ``haystack`` parameter that names no built-in corpus (a task built in Python is not
        type-checked by the command line's parser)."""
        if getattr(self, "haystack", None) not in CORPORA:
            raise UsageError(f"{self.label()}: haystack must be one of {', '.join(CORPORA)}")

    def check(self, backend: Backend, length: int) -> None:
        """Raise a UsageError for parameters that cannot work at this length, before any sample is built."""
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"{self.label()}: max_new_tokens must be at least 1 (got {self.max_new_tokens})")
        if length <= self.max_new_tokens:
            raise UsageError(
                f"{self.label()}: length {length} leaves no room for the prompt after the output budget "
                f"max_new_tokens={self.max_new_tokens}"
            )
        # Every counted item (a key, a question, a segment) takes at least one token of the request, so a count
        # above the length can never fit; refusing it here keeps generators from working through a billion
        # items before finding out.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (
                field.name not in ("max_new_tokens", *self.uncounted)
                and isinstance(value, int)
                and not isinstance(value, bool)
                and value > length
            ):
                raise UsageError(
                    f"{self.label()}: {field.name}={value} items cannot fit in a request of {length} tokens; "
                    f"lower {field.name} or raise the length"
                )


# The answer needs every unit of the context (a count over all words, an order of all segments): recorded as
# metadata["evidence"] = "every unit" rather than the whole context again.
EVERY_UNIT: tuple[str, ...] = ("<every unit>",)
# The questions carry everything the answers need (arithmetic stated in the question): the context is only
# length, so measured scope is 0 and there is nothing to rank.
NO_UNIT: tuple[str, ...] = ("<no unit>",)


def _evidence(
    evidence: Sequence[str] | Callable[[FittedContext], Sequence[str]] | None,
    needles: list[Needle],
    fitted: FittedContext,
) -> tuple[str, ...]:
    if evidence is EVERY_UNIT or evidence is NO_UNIT:
        return evidence
    texts = [n.text for n in needles] if evidence is None else evidence
    if callable(texts):
        texts = texts(fitted)
        if texts is EVERY_UNIT or texts is NO_UNIT:
            return texts
    # Stripped, so a needle's leading newline or space does not make it a different unit; only what the
    # context really holds counts (a truncated or refitted context may have lost some).
    stripped = [s for s in (t.strip() for t in texts) if s]
    context = fitted.context
    if len(stripped) < _LINE_INDEX_FROM:
        return tuple(dict.fromkeys(s for s in stripped if s in context))
    # Hundreds of evidence rows would each scan the whole context: one whose text is a whole line of it is
    # there for certain, found in one pass over the lines; only the others are searched for.
    lines = set(context.split("\n"))
    return tuple(dict.fromkeys(s for s in stripped if s in lines or s in context))


# Evidence texts from which indexing the context's lines once beats searching the context for each.
_LINE_INDEX_FROM = 32


def prompt_tokens(backend: Backend, template: str, question: str, prefix: str, context: str) -> int:
    """Tokens of the rendered one-message prompt over ``context``: what tasks measure their own overheads
    and fits with before building a sample."""
    user = template.format(context=context, question=question)
    return backend.count_tokens(backend.render([{"role": "user", "content": user}], prefix))


def cached_sample(task: Task, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
    """Build a sample, or read it back: keyed by (task parameters, seed, length, depth, tokenizer fingerprint),
    so every backend with the same tokenizer and every rerun sees byte-identical prompts."""
    token = task.cache_token()
    key = stable_hash([task.name, task.params(), seed, length, depth] + ([token] if token else []))
    path = cache_dir() / "samples" / backend.tokenizer_fingerprint() / task.name / f"{key}.json"
    if path.is_file():
        try:
            return Sample.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    sample = task.build(backend, length, depth, seed)
    atomic_write_text(path, sample.to_json())
    return sample

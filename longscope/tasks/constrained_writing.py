"""Constrained long writing (after Spinning the Golden Thread): a diary or plan whose events must fall in set periods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks._long_output import FAMILY, check_budget_fits, label_with_sized_budget, seeded
from longscope.tasks.base import Task

TEMPLATE = "Below are some notes, with instructions scattered among them.\n\n{context}\n\n{question}"
QUESTION = (
    "Write a {kind} of {periods} {unit}s, one entry per {unit}, from {Unit} 1 to {Unit} {periods}. Start each "
    "entry on its own line with '{Unit} N:' and write a few sentences for it. Follow every instruction in the "
    "notes above about which events to mention in which {unit}'s entry."
)
EVENTS = (
    "yoga class",
    "piano lesson",
    "dentist appointment",
    "call with grandmother",
    "book club",
    "farmers market",
    "swimming practice",
    "team meeting",
    "pottery workshop",
    "chess tournament",
    "garden volunteering",
    "cooking class",
    "film night",
    "hiking trip",
    "language exchange",
    "bike repair",
    "choir rehearsal",
    "library visit",
    "museum tour",
    "running club",
)
KINDS = ("once", "range", "periodic")
# Output tokens each entry is given when the budget is sized, and the least an entry header and one
# sentence need; a budget below periods × the least is refused.
TOKENS_PER_PERIOD = 48
MIN_TOKENS_PER_PERIOD = 12
MAX_PERIODS = 400


@dataclass(frozen=True)
class ConstrainedWriting(Task):
    """A diary (``unit=day``) or plan (``unit=week``) over ``periods`` periods, with ``constraints`` events
    (kinds in turn: once, range, periodic) that the notes in the context ask to be mentioned exactly in one
    period (and no other), in every period of a ``span``-long range, or every ``every`` periods. The output
    is cut at its "Day N:" / "Week N:" headers and each check made in its period's entry.

    ``max_new_tokens`` 0 sizes the budget to 48 tokens per period plus 16."""

    name: ClassVar[str] = "constrained_writing"
    description: ClassVar[str] = (
        "a diary or plan over many periods; events required once, in a range, periodically"
    )
    metric: ClassVar[str] = "period_constraints"
    breakdowns: ClassVar[tuple[str, ...]] = ("periods",)

    periods: int = 10
    unit: Literal["day", "week"] = "day"
    constraints: int = 3
    span: int = 3
    every: int = 3
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens == 0:
            object.__setattr__(self, "max_new_tokens", self.sized_budget())

    def sized_budget(self) -> int:
        return TOKENS_PER_PERIOD * max(1, self.periods) + 16

    def label(self) -> str:
        return label_with_sized_budget(self, self.sized_budget())

    @property
    def diffusion(self) -> float:
        return 0.3  # instructions stand among notes without markers of their own

    @property
    def scope(self) -> float:
        return round(min(0.8, 0.1 + 0.05 * self.constraints), 2)

    def plan(self, seed: int) -> tuple[list[dict], list[str], int]:
        """The constraints (event, kind, the periods it must appear in), their instructions, and the
        haystack's first unit: from the seed alone."""
        rng = seeded(self, seed, leave_out=("max_new_tokens",))
        events = rng.sample(EVENTS, self.constraints)
        Unit, found, texts = self.unit.title(), [], []
        for i, event in enumerate(events):
            kind = KINDS[i % len(KINDS)]
            if kind == "once":
                at = rng.randint(1, self.periods)
                periods = [at]
                text = f"Mention the {event} in the entry for {Unit} {at}, and in no other entry."
            elif kind == "range":
                first = rng.randint(1, self.periods - self.span + 1)
                periods = list(range(first, first + self.span))
                text = f"Mention the {event} in every entry from {Unit} {first} to {Unit} {periods[-1]}."
            else:
                first = rng.randint(1, self.every)
                periods = list(range(first, self.periods + 1, self.every))
                text = (
                    f"Mention the {event} every {self.every} {self.unit}s, starting with the entry for {Unit} "
                    f"{first} and going on to the end."
                )
            found.append({"event": event, "kind": kind, "periods": periods})
            texts.append(f" Instruction: {text}")
        return found, texts, rng.randrange(len(corpus(self.haystack).sentences))

    def reference(self, constraints: list[dict]) -> str:
        """An entry per period that mentions exactly the events due in it."""
        Unit, entries = self.unit.title(), []
        for period in range(1, self.periods + 1):
            due = [c["event"] for c in constraints if period in c["periods"]]
            body = (
                f"Today brought the {' and the '.join(due)}." if due else "A quiet stretch with nothing new."
            )
            entries.append(f"{Unit} {period}: {body}")
        return "\n".join(entries)

    def question(self) -> str:
        kind = "diary" if self.unit == "day" else "plan"
        return QUESTION.format(kind=kind, periods=self.periods, unit=self.unit, Unit=self.unit.title())

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 2 <= self.periods <= MAX_PERIODS:
            raise UsageError(f"{self.label()}: periods={self.periods} must be between 2 and {MAX_PERIODS}")
        if not 1 <= self.constraints <= len(EVENTS):
            raise UsageError(
                f"{self.label()}: constraints={self.constraints} must be between 1 and {len(EVENTS)}"
            )
        self.check_haystack()
        for field_name in ("span", "every"):
            value = getattr(self, field_name)
            if value < 1 or value > self.periods:
                raise UsageError(
                    f"{self.label()}: {field_name}={value} cannot be satisfied in periods={self.periods}: it must "
                    f"be between 1 and {self.periods} (raise periods or lower {field_name})"
                )
        if self.max_new_tokens < MIN_TOKENS_PER_PERIOD * self.periods:
            raise UsageError(
                f"{self.label()}: max_new_tokens={self.max_new_tokens} cannot hold {self.periods} entries of at "
                f"least {MIN_TOKENS_PER_PERIOD} tokens each; raise it to {MIN_TOKENS_PER_PERIOD * self.periods} or "
                "leave it out to size it"
            )
        _, texts, _ = self.plan(0)
        check_budget_fits(self, backend, length, TEMPLATE, self.question(), "", "".join(texts))

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        constraints, texts, start = self.plan(seed)
        needles = [Needle(text, round((i + 0.5) / len(texts), 4)) for i, text in enumerate(texts)]
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=self.question(), answers=(self.reference(constraints),))],
            source=corpus(self.haystack),
            start=start,
            needles=needles,
            metadata={
                "family": FAMILY,
                "unit": self.unit.title(),
                "periods": self.periods,
                "constraints": constraints,
            },
        )

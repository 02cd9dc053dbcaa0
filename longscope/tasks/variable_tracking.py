"""Variable tracking: chains of assignments hidden in filler text; name every variable bound to one value."""

from __future__ import annotations

import dataclasses
import random
import string
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks.base import Task, prompt_tokens

TEMPLATE = (
    "The text below hides statements of the form `VAR NAME = ...`. Each one binds a variable either to a "
    "number or to another variable, which gives it that variable's value. Read the text closely; afterwards "
    "you will be asked about the variables.\n\n{context}\n\n{question}"
)


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(5))


def _draw_distinct(draw, count: int) -> list:
    seen: set = set()
    items: list = []
    while len(items) < count:
        item = draw()
        if item not in seen:
            seen.add(item)
            items.append(item)
    return items


@dataclass(frozen=True)
class VariableTracking(Task):
    """Track ``chains`` chains of ``hops`` copies each (``VAR B = VAR A`` after ``VAR A = 12345``).

    A chain has ``hops + 1`` variables: one bound to a five-digit number, then each next one to the previous.
    Only the first chain is asked about; the others, with other numbers, are look-alikes. Each chain's
    statements sit at increasing depths drawn from the seed, so reading left to right resolves every one.
    """

    name: ClassVar[str] = "variable_tracking"
    description: ClassVar[str] = (
        "chains of variable assignments in filler text; name every variable with a value"
    )
    metric: ClassVar[str] = "contains_all"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("hops", "chains")

    haystack: Literal["essay", "noise"] = "noise"
    chains: int = 1
    hops: int = 4
    max_new_tokens: int = 64

    @property
    def diffusion(self) -> float:
        # Statements stand out from repeated noise less than a marked needle does (they are unlabelled);
        # prose hides them better, and other chains are look-alikes that must be kept apart.
        return round(min(1.0, 0.3 + 0.1 * (self.haystack == "essay") + 0.1 * min(self.chains - 1, 4)), 2)

    @property
    def scope(self) -> float:
        # Every statement of the asked chain is one fact needed for the answer.
        return round(min(0.9, 0.05 * (self.hops + 1)), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        for field_name in ("hops", "chains"):
            if getattr(self, field_name) < 1:
                raise UsageError(
                    f"{self.label()}: {field_name}={getattr(self, field_name)} must be at least 1"
                )
        # All statements must fit beside the instructions and question. One chain of one hop (a number
        # statement and a copy) measures a statement without drawing every name of a huge request.
        question, prefix, _, needles, _ = dataclasses.replace(self, chains=1, hops=1)._plan(0)
        empty = prompt_tokens(backend, TEMPLATE, question, prefix, "")
        per = max(
            1,
            -(
                -(
                    prompt_tokens(
                        backend, TEMPLATE, question, prefix, "".join(n.text for n in needles).lstrip()
                    )
                    - empty
                )
                // 2
            ),
        )
        statements = self.chains * (self.hops + 1)
        room = length - self.max_new_tokens - empty
        if statements * per > room:
            raise UsageError(
                f"{self.label()}: chains={self.chains} x (hops={self.hops} + 1) = {statements} statements of "
                f"about {per} tokens each do not fit at length {length}; at most {max(0, room // per)} "
                "statements fit (lower hops or chains, or raise the length)"
            )

    def _plan(self, seed: int) -> tuple[str, str, tuple[str, ...], list[Needle], int]:
        """Question, answer prefix, gold names, statement needles and the haystack's first sentence: from the
        seed alone, never the length, so every length asks the same question."""
        rng = self.rng(seed)
        size = self.hops + 1
        names = _draw_distinct(lambda: _name(rng), self.chains * size)
        values = _draw_distinct(lambda: str(rng.randint(10_000, 99_999)), self.chains)
        needles: list[Needle] = []
        for c in range(self.chains):
            chain = names[c * size : (c + 1) * size]
            # Sorted depths keep each statement after the one it copies; needles at one boundary keep
            # their list order, so ties cannot reverse them either.
            depths = sorted(round(rng.random(), 4) for _ in chain)
            texts = [f"VAR {chain[0]} = {values[c]}."]
            texts += [f"VAR {chain[i]} = VAR {chain[i - 1]}." for i in range(1, size)]
            needles += [Needle(" " + text, depth) for text, depth in zip(texts, depths, strict=True)]
        value = values[0]
        question = (
            f"Which variables hold the value {value}, whether bound to it directly or through other "
            "variables? List every such variable name."
        )
        prefix = f"The variables that hold the value {value} are:"
        start = rng.randrange(len(corpus(self.haystack).sentences))
        return question, prefix, tuple(names[:size]), needles, start

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        question, prefix, answers, needles, start = self._plan(seed)
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=question, answers=answers, answer_prefix=prefix)],
            source=body,
            start=start,
            needles=needles,
            metadata={"hops": self.hops, "chains": self.chains},
            # The asked chain; the others are distractors.
            evidence=[n.text for n in needles[: self.hops + 1]],
        )

"""Reasoning retrieval cannot shortcut (after GSM-Infinite): quantities defined through one another, spread as a
dependency graph among look-alike statements; the asked quantity takes every operation on its path."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks._room import require_room
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

MAX_OPS = 40
MAX_NOISE = 10
# Every quantity stays in this range, so no step needs negative numbers or numbers too long to copy.
LOW, HIGH = 1, 999

TEMPLATE = (
    "The text below contains statements about how many things there are in various places. Some numbers are "
    "given outright; others are defined from other numbers. Read the text closely; afterwards you will be "
    "asked to work out one of the numbers.\n\n{context}\n\n{question}"
)

ITEMS = tuple(
    "baskets lanterns barrels kites blankets candles crates bells boats ladders saddles kettles drums flags "
    "barrows sacks hammocks bottles wagons rafts clocks benches mirrors spoons ropes".split()
)


def _place(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS).capitalize()}"


@dataclass(frozen=True)
class Step:
    """One statement: the quantity it defines, its value, and the sentence that defines it."""

    quantity: str
    value: int
    text: str


# An operation on the quantity built so far and a constant: its result and how a statement says it.
_WITH_CONSTANT = {
    "more": (lambda value, k: value + k, "is {k} more than", (2, 9)),
    "fewer": (lambda value, k: value - k, "is {k} fewer than", (2, 9)),
    "times": (lambda value, k: value * k, "is {k} times", (2, 4)),
}
# An operation on the quantity built so far and a new given quantity.
_WITH_QUANTITY = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b}


def _chain(rng: random.Random, ops: int, fresh) -> list[Step]:
    """A graph whose last quantity needs exactly ``ops`` operations: each operation combines the quantity
    built so far with a constant (more, fewer, times) or with a new given quantity (plus, minus), whichever
    the shuffle offers first that keeps the result inside [LOW, HIGH]. ``fresh`` hands out quantity names
    never used before."""
    name, value = fresh(), rng.randint(2, 20)
    steps = [Step(name, value, f"The number of {name} is {value}.")]
    current = steps[0]
    for _ in range(ops):
        kinds = [*_WITH_CONSTANT, *_WITH_QUANTITY]
        rng.shuffle(kinds)
        for kind in kinds:  # "more" or "fewer" always fits, so one of them ends the loop
            if kind in _WITH_CONSTANT:
                apply, words, (low, high) = _WITH_CONSTANT[kind]
                k = rng.randint(low, high)
                if LOW <= apply(current.value, k) <= HIGH:
                    target = fresh()
                    text = f"The number of {target} {words.format(k=k)} the number of {current.quantity}."
                    current = Step(target, apply(current.value, k), text)
                    break
            else:
                given = rng.randint(2, 20)
                if LOW <= _WITH_QUANTITY[kind](current.value, given) <= HIGH:
                    leaf, target = fresh(), fresh()
                    steps.append(Step(leaf, given, f"The number of {leaf} is {given}."))
                    text = (
                        f"The number of {target} equals the number of {current.quantity} {kind} the number "
                        f"of {leaf}."
                    )
                    current = Step(target, _WITH_QUANTITY[kind](current.value, given), text)
                    break
        steps.append(current)
    return steps


@dataclass(frozen=True)
class GsmGraph(Task):
    """Work out a quantity defined through ``ops`` operations on other quantities.

    The asked quantity's graph is a chain: a given number, then ``ops`` operations, each adding, subtracting
    or multiplying by a constant, or adding or subtracting another given quantity. Its statements sit in the
    haystack in random order at random depths, so no single statement answers the question and reading
    order does not help. ``noise`` more graphs of the same form and size, over other quantities, surround
    it. The gold is computed by the generator as it builds the graph.
    """

    name: ClassVar[str] = "gsm_graph"
    description: ClassVar[str] = "a quantity defined through a chain of operations spread among look-alikes"
    metric: ClassVar[str] = "exact_number"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("operations", "noise")

    ops: int = 3
    noise: int = 2
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # The statements are unmarked and the noise graphs read exactly like the asked one.
        return round(min(1.0, 0.5 + 0.1 * min(self.noise, 3)), 2)

    @property
    def scope(self) -> float:
        # Every statement on the asked chain is needed.
        return round(min(0.9, 0.1 + 0.05 * self.ops), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if not 1 <= self.ops <= MAX_OPS:
            raise UsageError(f"{self.label()}: ops={self.ops} cannot be built; use 1 to {MAX_OPS} operations")
        if not 0 <= self.noise <= MAX_NOISE:
            raise UsageError(f"{self.label()}: noise={self.noise} must be between 0 and {MAX_NOISE}")
        question, needles, _, _, _ = self._draw(0)
        require_room(
            backend,
            label=self.label(),
            length=length,
            max_new_tokens=self.max_new_tokens,
            template=TEMPLATE,
            question=question,
            prefix="",
            texts=[" " + n.text for n in needles],
            what=f"{len(needles)} statements (ops={self.ops}, noise={self.noise})",
            fix="lower ops or noise",
        )

    def _draw(self, seed: int) -> tuple[str, list[Needle], Step, int, int]:
        """Question, statement needles (the asked graph's first), the asked step, the asked graph's statement
        count and the haystack's first sentence: from the seed alone."""
        rng = self.rng(seed)
        used: set[str] = set()

        def fresh() -> str:
            while True:
                name = f"{rng.choice(ITEMS)} in {_place(rng)}"
                if name not in used:
                    used.add(name)
                    return name

        graphs = [_chain(rng, self.ops, fresh) for _ in range(self.noise + 1)]
        asked = graphs[0][-1]
        needles = [Needle(step.text, round(rng.random(), 4)) for graph in graphs for step in graph]
        question = f"What is the number of {asked.quantity}? Answer with the number only."
        return question, needles, asked, len(graphs[0]), rng.randrange(len(corpus(self.haystack).sentences))

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        question, needles, asked, statements, start = self._draw(seed)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(
                    question=question,
                    answers=(str(asked.value),),
                    answer_prefix=f"The number of {asked.quantity} is",
                )
            ],
            source=corpus(self.haystack),
            start=start,
            needles=needles,
            metadata={"operations": self.ops, "noise": self.noise, "statements": statements},
            evidence=[n.text for n in needles[:statements]],
        )

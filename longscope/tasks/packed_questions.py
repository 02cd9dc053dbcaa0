"""Packed questions (after LongGenBench): K independent checkable questions answered in one long response."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks._long_output import FAMILY, check_budget_fits, label_with_sized_budget, seeded
from longscope.tasks.base import NO_UNIT, Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

TEMPLATE = (
    "Below is a document. Some of its sentences record locker numbers, which some of the questions after it "
    "ask for.\n\n{context}\n\n{question}"
)
PACKED_INSTRUCTIONS = (
    "Answer all {count} questions below in one response. Write exactly one line per question, in order, in "
    "the form 'N: answer', where N is the question's number and the answer is a single whole number, with "
    "nothing else on the line.\n\n"
)
SINGLE_INSTRUCTIONS = (
    "Answer the question below. Write one line in the form '{number}: answer', where the answer is a single "
    "whole number, with nothing else on the line.\n\n"
)

PEOPLE = "Mira Tomas Ines Oskar Lena Pavel Nora Elias Vera Jonas Alma Ruben Sofia Emil Greta Milan".split()
THINGS = "pencils marbles stamps buttons shells cards beads coins".split()

# Output tokens a numbered answer line is given when the budget is sized: "37: 4821" and its newline take
# about 6 in SmolLM2-like tokenizers; the rest is room for a model's own spacing. A budget below the
# minimum cannot hold the lines at all.
TOKENS_PER_LINE = 10
MIN_TOKENS_PER_LINE = 6
MAX_QUESTIONS = 500


@dataclass(frozen=True)
class Problem:
    number: int
    text: str
    answer: int
    fact: str = ""  # the context sentence a look-up needs


def _arithmetic(rng: random.Random, number: int) -> Problem:
    who, things = rng.choice(PEOPLE), rng.choice(THINGS)
    form = rng.randrange(4)
    a, b = rng.randint(3, 19), rng.randint(3, 19)
    if form == 0:
        c = rng.randint(1, a * b - 1)
        text = f"{who} buys {a} boxes of {b} {things} and gives away {c} of them. How many {things} are left?"
        return Problem(number, text, a * b - c)
    if form == 1:
        c = rng.randint(2, 60)
        text = f"A shelf holds {a} rows of {b} jars, and {c} more jars arrive. How many jars are there now?"
        return Problem(number, text, a * b + c)
    if form == 2:
        start, spent, earned = rng.randint(40, 200), rng.randint(1, 39), rng.randint(1, 90)
        text = (
            f"{who} has {start} coins, spends {spent}, then earns {earned}. How many coins does {who} have?"
        )
        return Problem(number, text, start - spent + earned)
    text = f"{a * b} {things} are shared equally among {a} friends. How many {things} does each friend get?"
    return Problem(number, text, b)


def _lookup(rng: random.Random, number: int, owner: str) -> Problem:
    code = rng.randint(1000, 9999)
    return Problem(
        number, f"What is the locker number of {owner}?", code, f" The locker number of {owner} is {code}."
    )


@dataclass(frozen=True)
class PackedQuestions(Task):
    """``questions`` independent questions with whole-number answers: arithmetic word problems stated in the
    question, and look-ups of locker numbers recorded in the context (needles spread over it). Packed, they
    are one turn answered as "N: answer" lines; with ``one_at_a_time`` the same questions (same numbers,
    same answers) are one turn each, so a run can hold both and pair them.

    ``max_new_tokens`` 0 sizes the budget: 10 tokens per answer line plus 16 packed, 32 for one question.
    """

    name: ClassVar[str] = "packed_questions"
    description: ClassVar[str] = (
        "K arithmetic and look-up questions answered in one response as numbered lines; or one at a time"
    )
    metric: ClassVar[str] = "packed_answers"
    breakdowns: ClassVar[tuple[str, ...]] = ("packed", "questions")

    questions: int = 10
    one_at_a_time: bool = False
    kind: Literal["mixed", "arithmetic", "lookup"] = "mixed"
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens == 0:
            object.__setattr__(self, "max_new_tokens", self.sized_budget())

    def sized_budget(self) -> int:
        return 32 if self.one_at_a_time else TOKENS_PER_LINE * max(1, self.questions) + 16

    def label(self) -> str:
        return label_with_sized_budget(self, self.sized_budget())

    @property
    def diffusion(self) -> float:
        # Look-ups are marked sentences in prose; arithmetic needs nothing from the context.
        return {"arithmetic": 0.1, "mixed": 0.3, "lookup": 0.35}[self.kind]

    @property
    def scope(self) -> float:
        # Each look-up is one fact; many of them packed together cover more of the context.
        if self.kind == "arithmetic":
            return 0.05
        return round(min(0.8, 0.1 + 0.01 * self.questions), 2)

    def problems(self, seed: int) -> tuple[list[Problem], int]:
        """The questions and the haystack's first unit, from the seed and the instance alone (never the
        length, and never whether they are packed)."""
        rng = seeded(self, seed, leave_out=("one_at_a_time", "max_new_tokens"))
        if self.kind == "mixed":
            kinds = ["lookup"] * (self.questions // 2) + ["arithmetic"] * (
                self.questions - self.questions // 2
            )
            rng.shuffle(kinds)
        else:
            kinds = [self.kind] * self.questions
        owners = [f"{a.title()} {n.title()}" for a in ADJECTIVES for n in NOUNS]
        chosen = iter(rng.sample(owners, kinds.count("lookup")))
        problems = [
            _lookup(rng, i, next(chosen)) if kind == "lookup" else _arithmetic(rng, i)
            for i, kind in enumerate(kinds, start=1)
        ]
        return problems, rng.randrange(len(corpus(self.haystack).sentences))

    def turns(self, problems: list[Problem]) -> list[Turn]:
        if self.one_at_a_time:
            return [
                Turn(
                    SINGLE_INSTRUCTIONS.format(number=p.number) + f"{p.number}. {p.text}",
                    (f"{p.number}: {p.answer}",),
                )
                for p in problems
            ]
        listed = "\n".join(f"{p.number}. {p.text}" for p in problems)
        return [
            Turn(
                PACKED_INSTRUCTIONS.format(count=len(problems)) + listed,
                tuple(f"{p.number}: {p.answer}" for p in problems),
            )
        ]

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 1 <= self.questions <= MAX_QUESTIONS:
            raise UsageError(
                f"{self.label()}: questions={self.questions} must be between 1 and {MAX_QUESTIONS}"
            )
        self.check_haystack()
        lines = 1 if self.one_at_a_time else self.questions
        if self.max_new_tokens < MIN_TOKENS_PER_LINE * lines:
            raise UsageError(
                f"{self.label()}: max_new_tokens={self.max_new_tokens} cannot hold {lines} answer line(s) of at "
                f"least {MIN_TOKENS_PER_LINE} tokens each; raise it to {MIN_TOKENS_PER_LINE * lines} or leave it "
                "out to size it"
            )
        problems, _ = self.problems(0)
        question = max((t.question for t in self.turns(problems)), key=len)
        check_budget_fits(self, backend, length, TEMPLATE, question, "", "".join(p.fact for p in problems))

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        problems, start = self.problems(seed)
        facts = [p for p in problems if p.fact]
        # Spread evenly over the context, in the order they are asked, so position in the answer and depth
        # in the context go together.
        needles = [Needle(p.fact, round((i + 0.5) / len(facts), 4)) for i, p in enumerate(facts)]
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=self.turns(problems),
            source=corpus(self.haystack),
            start=start,
            needles=needles,
            metadata={
                "family": FAMILY,
                "packed": not self.one_at_a_time,
                "questions": self.questions,
                "question_ids": [p.number for p in problems],
                "question_kinds": ["lookup" if p.fact else "arithmetic" for p in problems],
            },
            evidence=[p.fact for p in facts] if facts else NO_UNIT,
        )

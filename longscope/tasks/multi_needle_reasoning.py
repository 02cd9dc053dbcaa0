"""Multi-needle reasoning: find several secret numbers and combine them (sum, largest, or largest minus smallest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

MAX_NEEDLES = 5
MAX_DISTRACTORS = 20

TEMPLATE = (
    "Hidden in the text below are some secret numbers, each written next to a name. Read the text closely; "
    "afterwards you will be asked to work something out from some of them.\n\n{context}\n\n{question}"
)

_ASK = {
    "sum": "What is the sum of the secret numbers for {keys}?",
    "max": "What is the largest of the secret numbers for {keys}?",
    "difference": "What do you get when you subtract the smallest of the secret numbers for {keys} from the largest?",
}
_PREFIX = {"sum": "The sum is", "max": "The largest is", "difference": "The difference is"}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class MultiNeedleReasoning(Task):
    """``needles`` secret numbers with distinct keys must all be found and combined into one number.

    Values have two to four digits, so the arithmetic stays easy and finding the facts is what is tested;
    they are distinct, so the largest is unique. ``distractors`` extra needles carry other keys, so summing
    every number in the text is no shortcut. The first needle sits at the requested depth, the rest at
    depths drawn from the seed.
    """

    name: ClassVar[str] = "multi_needle_reasoning"
    description: ClassVar[str] = "several needles whose numbers must be combined (sum, largest or difference)"
    metric: ClassVar[str] = "exact_number"
    uses_depth: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("needles", "operation")

    needles: int = 2
    operation: Literal["sum", "max", "difference"] = "sum"
    distractors: int = 0
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # Each fact is a marked needle; unasked look-alike needles make the right ones harder to pick out.
        return round(min(1.0, 0.3 + 0.1 * min(self.distractors, 3)), 2)

    @property
    def scope(self) -> float:
        return round(min(1.0, 0.1 + 0.05 * self.needles), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if not 2 <= self.needles <= MAX_NEEDLES:
            raise UsageError(
                f"{self.label()}: needles={self.needles} must be between 2 and {MAX_NEEDLES}; "
                "combining needs at least two facts"
            )
        if not 0 <= self.distractors <= MAX_DISTRACTORS:
            raise UsageError(
                f"{self.label()}: distractors={self.distractors} must be between 0 and {MAX_DISTRACTORS}"
            )
        if self.operation not in _ASK:
            raise UsageError(f"{self.label()}: operation must be one of {', '.join(_ASK)}")

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        keys: list[str] = []
        while len(keys) < self.needles + self.distractors:
            key = f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
            if key not in keys:
                keys.append(key)
        values: list[int] = []
        while len(values) < len(keys):
            # Two to four digits, a mix of sizes, so that the numbers do not all line up column by column.
            value = rng.randint(10, 10 ** rng.randint(2, 4) - 1)
            if value not in values:
                values.append(value)
        asked = values[: self.needles]
        answer = {"sum": sum(asked), "max": max(asked), "difference": max(asked) - min(asked)}[self.operation]
        first_depth = 0.5 if depth is None else depth
        needles = [
            Needle(
                f"The secret number for {key} is {value}.", first_depth if i == 0 else round(rng.random(), 4)
            )
            for i, (key, value) in enumerate(zip(keys, values, strict=True))
        ]
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=first_depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(
                    question=_ASK[self.operation].format(keys=_join(keys[: self.needles]))
                    + " Answer with the number only.",
                    answers=(str(answer),),
                    answer_prefix=_PREFIX[self.operation],
                )
            ],
            source=body,
            start=rng.randrange(len(body.sentences)),
            needles=needles,
            metadata={"needles": self.needles, "operation": self.operation, "distractors": self.distractors},
            evidence=[n.text for n in needles[: self.needles]],  # the asked keys; the rest are distractors
        )

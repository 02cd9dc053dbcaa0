"""Instruction exam: many short numbered items in one context; answer the asked ones as "N: answer" lines."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, corpus
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import NOUNS

ItemType = Literal["any", "add", "subtract", "multiply", "reverse", "count", "odd_one_out"]
ITEM_TYPES = ("add", "subtract", "multiply", "reverse", "count", "odd_one_out")
Layout = Literal["global", "local", "mixed"]

# Words to reverse or count: plain nouns, no palindromes (a reversed palindrome tells nothing).
WORDS = tuple(w for w in NOUNS if 4 <= len(w) <= 9 and w != w[::-1])

# Odd one out: groups whose members nobody would place in another group.
GROUPS = {
    "animals": ("badger", "camel", "donkey", "falcon", "heron", "otter", "rabbit", "tiger", "zebra", "goat"),
    "fruits": ("apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "peach", "pear", "plum"),
    "tools": ("hammer", "chisel", "wrench", "saw", "drill", "pliers", "shovel", "rake", "spanner", "trowel"),
    "colours": ("red", "blue", "green", "yellow", "purple", "brown", "pink", "grey", "black", "white"),
    "instruments": (
        "violin",
        "flute",
        "drum",
        "harp",
        "trumpet",
        "cello",
        "banjo",
        "piano",
        "guitar",
        "oboe",
    ),
    "vehicles": ("car", "bus", "truck", "bicycle", "train", "tram", "van", "taxi", "scooter", "lorry"),
}

# The one instruction a ``global`` exam states at the top, and the bare input each item then shows.
GLOBAL_INSTRUCTION = {
    "add": "Every item below is a sum: answer with its result.",
    "subtract": "Every item below is a subtraction: answer with its result.",
    "multiply": "Every item below is a multiplication: answer with its result.",
    "reverse": "Every item below is a word: answer with the word written backwards, last letter first.",
    "count": "Every item below is a word: answer with the number of letters in it.",
    "odd_one_out": (
        "Every item below lists four words, three of which belong to one group: answer with the letter of "
        "the word that does not belong."
    ),
}

# Answers take at most this many output tokens per asked item ("12: nretnal" and a newline), generously.
TOKENS_PER_ANSWER = 12


@dataclass(frozen=True)
class Item:
    type: str
    bare: str  # the input alone, as a global exam shows it
    local: str  # the input with its own instruction
    answer: str


def make_item(kind: str, rng: random.Random) -> Item:
    """One exercise with a short answer that can be checked exactly."""
    if kind == "add":
        a, b = rng.randint(2, 49), rng.randint(2, 49)
        return Item(kind, f"{a} + {b}", f"What is {a} + {b}?", str(a + b))
    if kind == "subtract":
        a = rng.randint(10, 60)
        b = rng.randint(1, a - 1)
        return Item(kind, f"{a} - {b}", f"What is {a} - {b}?", str(a - b))
    if kind == "multiply":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return Item(kind, f"{a} * {b}", f"What is {a} * {b}?", str(a * b))
    if kind == "reverse":
        word = rng.choice(WORDS)
        return Item(kind, word, f"Write the word '{word}' backwards.", word[::-1])
    if kind == "count":
        word = rng.choice(WORDS)
        return Item(kind, word, f"How many letters are in the word '{word}'?", str(len(word)))
    if kind == "odd_one_out":
        same, odd = rng.sample(sorted(GROUPS), 2)
        words = rng.sample(GROUPS[same], 3)
        slot = rng.randrange(4)
        words.insert(slot, rng.choice(GROUPS[odd]))
        options = " ".join(f"{letter}) {word}" for letter, word in zip("ABCD", words, strict=True))
        return Item(
            kind, options, f"Which word is the odd one out: {options}? Give its letter.", "ABCD"[slot]
        )
    raise ValueError(f"unknown item type {kind!r}")


@dataclass(frozen=True)
class _Exam:
    make: Callable[[int], str]
    pieces: Callable[[int], list[str]]  # make(i) cut into its number and its words, which recur
    item: Callable[[int], Item]  # the item numbered i + 1
    template: str
    question: str
    asked: tuple[int, ...]  # item numbers, 1-based


@dataclass(frozen=True)
class InstructionExam(Task):
    """A numbered exam that grows with the length; the model answers a seeded handful of its items.

    ``global``: one instruction at the top, then bare inputs of a single type. ``local``: one type, each item
    with its own instruction. ``mixed``: each item with its own instruction, types mixed. The asked items are
    drawn from the first ``min_items``, so the question is the same at every length; the check makes sure that
    many items fit.
    """

    name: ClassVar[str] = "instruction_exam"
    description: ClassVar[str] = "many numbered short exercises; answer the asked ones as 'N: answer' lines"
    metric: ClassVar[str] = "numbered_items"
    breakdowns: ClassVar[tuple[str, ...]] = ("layout",)

    layout: Layout = "mixed"
    item_type: ItemType = "any"
    asked: int = 5
    min_items: int = 20
    max_new_tokens: int = 96

    @property
    def diffusion(self) -> float:
        # A global instruction is stated once, far from most items; local ones sit by their item; mixed
        # types mean each asked item must be read with its own instruction.
        return {"global": 0.2, "local": 0.3, "mixed": 0.5}[self.layout]

    @property
    def scope(self) -> float:
        base = {"global": 0.3, "local": 0.3, "mixed": 0.4}[self.layout]
        return round(min(1.0, base + 0.02 * max(0, self.asked - 5)), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.asked < 1:
            raise UsageError(f"{self.label()}: asked={self.asked} must be at least 1")
        if self.min_items < self.asked:
            raise UsageError(
                f"{self.label()}: min_items={self.min_items} is below asked={self.asked}; the asked items are "
                "drawn from the first min_items"
            )
        if self.layout == "mixed" and self.item_type != "any":
            raise UsageError(
                f"{self.label()}: item_type={self.item_type} cannot be used with layout=mixed, which mixes "
                "every type; leave item_type=any"
            )
        if self.asked * TOKENS_PER_ANSWER > self.max_new_tokens:
            raise UsageError(
                f"{self.label()}: asked={self.asked} needs about {self.asked * TOKENS_PER_ANSWER} output tokens "
                f"but max_new_tokens={self.max_new_tokens}; raise max_new_tokens or ask fewer"
            )
        # The first min_items items must fit: count the request holding exactly those (seed 0's items,
        # with 5% spare for other seeds; build verifies the fitted exam of every seed anyway).
        exam = self._exam(self.rng(0))
        context = "".join(exam.make(i) for i in range(self.min_items)).lstrip()
        user = exam.template.format(context=context, question=exam.question)
        need = int(backend.count_tokens(backend.render([{"role": "user", "content": user}])) * 1.05)
        budget = length - self.max_new_tokens
        if need > budget:
            raise UsageError(
                f"{self.label()}: min_items={self.min_items} needs about {need} tokens but length {length} "
                f"leaves {budget} after the output budget; lower min_items or raise the length"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        exam = self._exam(self.rng(seed))

        def gold(fitted) -> list[tuple[str, ...]]:
            if fitted.haystack_units < self.min_items:
                raise UsageError(
                    f"{self.label()}: only {fitted.haystack_units} items fit in length {length}, fewer than "
                    f"min_items={self.min_items}; lower min_items or raise the length"
                )
            return [tuple(f"{n}: {exam.item(n - 1).answer}" for n in exam.asked)]

        sample = self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=exam.template,
            turns=[Turn(question=exam.question, answers=())],
            source=GeneratedUnits(exam.make, name=self.name, pieces=exam.pieces),
            start=0,
            answers_after_fit=gold,
            evidence=[exam.make(n - 1) for n in exam.asked],
            metadata={
                "layout": self.layout,
                "asked": list(exam.asked),
                "asked_types": [exam.item(n - 1).type for n in exam.asked],
            },
        )
        # The number of items is known only once the exam is fitted.
        return dataclasses.replace(sample, metadata={**sample.metadata, "items": sample.metadata["units"]})

    def _exam(self, rng: random.Random) -> _Exam:
        single = self.item_type if self.item_type != "any" else rng.choice(ITEM_TYPES)
        base = f"{rng.getrandbits(64):x}"
        asked = tuple(sorted(rng.sample(range(1, self.min_items + 1), self.asked)))

        # Seeding a generator per item is the cost: assembling, counting and the gold answers share one draw.
        @functools.cache
        def item(i: int) -> Item:
            r = random.Random(f"{base}-{i}")
            return make_item(r.choice(ITEM_TYPES) if self.layout == "mixed" else single, r)

        noise = corpus("noise")

        def make(i: int) -> str:
            if i < 0:  # before the exam: plain filler, never a partial item
                return noise.unit(i)
            it = item(i)
            return f"\n{i + 1}. {it.bare if self.layout == 'global' else it.local}"

        def pieces(i: int) -> list[str]:
            if i < 0:
                return [noise.unit(i)]
            it = item(i)
            # Cut before every space: a byte-level tokenizer never merges across one, and the words, sums
            # and item numbers recur from sample to sample, so each is counted once.
            words = (it.bare if self.layout == "global" else it.local).split(" ")
            return [f"\n{i + 1}.", *(" " + word for word in words)]

        if self.layout == "global":
            intro = "Below is a long exam of numbered items. " + GLOBAL_INSTRUCTION[single]
            how = "as the instruction at the top says"
        else:
            intro = "Below is a long exam of numbered items, each with its own instruction."
            how = "each as its own instruction says"
        numbers = ", ".join(str(n) for n in asked[:-1]) + (" and " if len(asked) > 1 else "") + str(asked[-1])
        question = (
            f"Answer only item{'s' if len(asked) > 1 else ''} {numbers}, {how}. Write one line per item in the "
            "form 'N: answer' (the item's number, a colon, then the answer alone) and nothing else."
        )
        return _Exam(make, pieces, item, intro + "\n\n{context}\n\n{question}", question, asked)

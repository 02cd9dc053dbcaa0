"""Instruction exam: many short numbered items in one context; answer the asked ones as "N: answer" lines."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, corpus, counts_by_text, indexed_counts
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


def _exercise(kind: str, draws: list[int]) -> tuple[str, str, str]:
    """One exercise with a short answer that can be checked exactly, as (bare input, input with its own
    instruction, answer), from one item's row of ``_ItemDraws``."""
    if kind == "add":
        a, b = draws[0], draws[1]
        return f"{a} + {b}", f"What is {a} + {b}?", str(a + b)
    if kind == "subtract":
        a, b = draws[2], draws[3]
        return f"{a} - {b}", f"What is {a} - {b}?", str(a - b)
    if kind == "multiply":
        a, b = draws[4], draws[5]
        return f"{a} * {b}", f"What is {a} * {b}?", str(a * b)
    if kind == "reverse":
        word = WORDS[draws[6]]
        return word, f"Write the word '{word}' backwards.", word[::-1]
    if kind == "count":
        word = WORDS[draws[6]]
        return word, f"How many letters are in the word '{word}'?", str(len(word))
    if kind == "odd_one_out":
        same, odd = _GROUP_NAMES[draws[7]], _GROUP_NAMES[draws[8]]
        slot = draws[12]
        words = [GROUPS[same][j] for j in draws[9:12]]
        words.insert(slot, GROUPS[odd][draws[13]])
        options = " ".join(f"{letter}) {word}" for letter, word in zip("ABCD", words, strict=True))
        return options, f"Which word is the odd one out: {options}? Give its letter.", "ABCD"[slot]
    raise ValueError(f"unknown item type {kind!r}")


def _format(kind: str, rows: list[list[int]], local: bool) -> list[str]:
    """``_exercise``'s inputs for many rows of one type at once."""
    if kind in _OPERATORS:
        first, op = _OPERATORS[kind]
        if local:
            return [f"What is {row[first]} {op} {row[first + 1]}?" for row in rows]
        return [f"{row[first]} {op} {row[first + 1]}" for row in rows]
    if kind in ("reverse", "count"):
        if not local:
            return [WORDS[row[6]] for row in rows]
        if kind == "reverse":
            return [f"Write the word '{WORDS[row[6]]}' backwards." for row in rows]
        return [f"How many letters are in the word '{WORDS[row[6]]}'?" for row in rows]
    return [_exercise(kind, row)[1 if local else 0] for row in rows]


def _odd_one_out(words: list[list[int]], local: bool) -> list[str]:
    """``_exercise``'s odd-one-out inputs from the shown words' indices (``_ItemDraws.odd_words``)."""
    lists = [
        f"A) {_GROUP_WORDS[a]} B) {_GROUP_WORDS[b]} C) {_GROUP_WORDS[c]} D) {_GROUP_WORDS[d]}"
        for a, b, c, d in words
    ]
    return (
        [f"Which word is the odd one out: {options}? Give its letter." for options in lists]
        if local
        else lists
    )


_GROUP_NAMES = sorted(GROUPS)
# Every group's words in one list (groups in name order), and where each group starts in it.
_GROUP_WORDS = [word for name in _GROUP_NAMES for word in GROUPS[name]]
_GROUP_STARTS = np.cumsum([0] + [len(GROUPS[name]) for name in _GROUP_NAMES[:-1]])
# The odd-one-out instruction's words around the list (``_exercise``), as an input cut at spaces shows them.
_ODD_ASKED = "Which word is the odd one out: Give its letter."
# The arithmetic types: where their two operands sit in an item's row of draws, and the operator.
_OPERATORS = {"add": (0, "+"), "subtract": (2, "-"), "multiply": (4, "*")}
# Items drawn together, from one generator per block: seeding a generator per item cost more than the rest
# of a 128k build.
_BLOCK = 4096


class _ItemDraws:
    """One exam's items, drawn by numpy in blocks: per item its type (for a mixed exam) and every number an
    exercise of any type needs (two addends in 2..49; a minuend in 10..60 and a subtrahend below it; two
    factors in 2..12; a word; two distinct groups, three distinct words of the first in order, a slot for the
    odd word and the odd word itself), each uniform as before."""

    def __init__(self, seed: int, single: str | None):
        self.seed = seed
        self.single = single  # the one type of a global or local exam; None mixes them
        self._blocks: dict[int, tuple[list[str], list[list[int]]]] = {}
        self._columns: dict[int, np.ndarray] = {}
        self._codes: dict[int, np.ndarray] = {}  # per block, each item's index in ITEM_TYPES
        self._bodies: dict[tuple[int, bool], list[str]] = {}

    def block(self, b: int) -> tuple[list[str], list[list[int]]]:
        if b not in self._blocks:
            g = np.random.Generator(np.random.PCG64([self.seed, b]))
            codes = (
                np.full(_BLOCK, ITEM_TYPES.index(self.single))
                if self.single
                else g.integers(len(ITEM_TYPES), size=_BLOCK)
            )
            kinds = [ITEM_TYPES[code] for code in codes.tolist()]
            minuend = g.integers(10, 61, size=_BLOCK)
            groups = g.random((_BLOCK, len(_GROUP_NAMES))).argsort(axis=1)[:, :2]
            trio = g.random((_BLOCK, 10)).argsort(axis=1)[:, :3]
            columns = np.column_stack(
                [
                    g.integers(2, 50, size=(_BLOCK, 2)),
                    minuend,
                    g.integers(1, minuend),
                    g.integers(2, 13, size=(_BLOCK, 2)),
                    g.integers(len(WORDS), size=_BLOCK),
                    groups,
                    trio,
                    g.integers(4, size=_BLOCK),
                    g.integers(10, size=_BLOCK),
                ]
            )
            self._blocks[b] = (kinds, columns.tolist())
            self._columns[b] = columns
            self._codes[b] = codes
        return self._blocks[b]

    def body_counts(self, backend: Backend, b: int, local: bool) -> np.ndarray:
        """Token counts of block ``b``'s inputs as the sums of their space-cut pieces: sums and words from
        small tables of numbers and words, odd-one-out lists from a table of the groups' words."""
        self.block(b)
        columns = self._columns[b]
        out = np.zeros(_BLOCK, dtype=np.int64)

        def table(texts: list[str]) -> np.ndarray:
            return np.array(counts_by_text(backend, texts), dtype=np.int64)

        codes = self._codes[b]
        for code in np.unique(codes).tolist():
            kind = ITEM_TYPES[code]
            at = np.flatnonzero(codes == code)
            if kind in _OPERATORS:
                first, op = _OPERATORS[kind]
                numbers = table([f" {n}" for n in range(61)])
                last = table([f" {n}?" for n in range(61)]) if local else numbers
                fixed = table([" What", " is", f" {op}"] if local else [f" {op}"]).sum()
                out[at] = fixed + numbers[columns[at, first]] + last[columns[at, first + 1]]
            elif kind in ("reverse", "count") and not local:
                out[at] = table([" " + word for word in WORDS])[columns[at, 6]]
            elif kind == "reverse":
                fixed = table([" Write", " the", " word", " backwards."]).sum()
                out[at] = fixed + table([f" '{word}'" for word in WORDS])[columns[at, 6]]
            elif kind == "count":
                fixed = table([" How", " many", " letters", " are", " in", " the", " word"]).sum()
                out[at] = fixed + table([f" '{word}'?" for word in WORDS])[columns[at, 6]]
            else:
                # Odd one out: the fixed words, the labels, and the four words (the last one with its "?").
                words = self.odd_words(b)[at]
                spaced = table([" " + word for word in _GROUP_WORDS])
                last = table([f" {word}?" for word in _GROUP_WORDS]) if local else spaced
                fixed = table([f" {label})" for label in "ABCD"]).sum()
                if local:
                    fixed += table([" " + word for word in _ODD_ASKED.split(" ")]).sum()
                out[at] = fixed + spaced[words[:, :3]].sum(axis=1) + last[words[:, 3]]
        return out

    def odd_words(self, b: int) -> np.ndarray:
        """Block ``b``'s odd-one-out lists as indices into ``_GROUP_WORDS``, in the order shown: the three
        words of one group with the odd word inserted at its slot, as ``_exercise`` lays them."""
        self.block(b)
        columns = self._columns[b]
        same = _GROUP_STARTS[columns[:, 7], None] + columns[:, 9:12]
        odd = _GROUP_STARTS[columns[:, 8]] + columns[:, 13]
        slot = columns[:, 12, None]
        shown = np.arange(4)
        before = np.take_along_axis(same, np.clip(np.where(shown < slot, shown, shown - 1), 0, 2), axis=1)
        return np.where(shown == slot, odd[:, None], before)

    def bodies(self, b: int, local: bool) -> list[str]:
        """Block ``b``'s inputs as ``_exercise`` writes them (with their own instructions when ``local``),
        formatted a type at a time: a call per item cost more than the formatting."""
        if (b, local) not in self._bodies:
            _, rows = self.block(b)
            codes = self._codes[b]
            out = [""] * _BLOCK
            for code in np.unique(codes).tolist():
                at = np.flatnonzero(codes == code)
                if ITEM_TYPES[code] == "odd_one_out":
                    texts = _odd_one_out(self.odd_words(b)[at].tolist(), local)
                else:
                    texts = _format(ITEM_TYPES[code], [rows[r] for r in at.tolist()], local)
                for r, text in zip(at.tolist(), texts, strict=True):
                    out[r] = text
            self._bodies[b, local] = out
        return self._bodies[b, local]

    def item(self, i: int) -> Item:
        kinds, rows = self.block(i // _BLOCK)
        kind = kinds[i % _BLOCK]
        return Item(kind, *_exercise(kind, rows[i % _BLOCK]))


@dataclass(frozen=True)
class _Exam:
    make: Callable[[int], str]
    pieces: Callable[[int], list[str]]  # make(i) cut into its number and its words, which recur
    unit_counts: Callable[[Backend, int, int], np.ndarray]  # the pieces' counts summed in bulk
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

    def cache_token(self) -> str:
        # Generated units are drawn by numpy in blocks now, not by a generator per unit: other bytes.
        return "block-draws-v2"

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
            source=GeneratedUnits(
                exam.make, name=self.name, pieces=exam.pieces, unit_counts=exam.unit_counts
            ),
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
        seed = rng.getrandbits(64)
        asked = tuple(sorted(rng.sample(range(1, self.min_items + 1), self.asked)))

        draws = _ItemDraws(seed, None if self.layout == "mixed" else single)
        bodies: dict[int, list[str]] = {}
        block_counts: dict[tuple[str, int], np.ndarray] = {}  # per tokenizer fingerprint and block

        def block_bodies(b: int) -> list[str]:
            if b not in bodies:
                bodies[b] = draws.bodies(b, local=self.layout != "global")
            return bodies[b]

        @functools.cache
        def item(i: int) -> Item:
            return draws.item(i)

        noise = corpus("noise")

        @functools.cache
        def block_units(b: int) -> list[str]:
            # A block's numbered items made together: a call per item cost more than its formatting.
            return [f"\n{i}. {body}" for i, body in enumerate(block_bodies(b), b * _BLOCK + 1)]

        def make(i: int) -> str:
            if i < 0:  # before the exam: plain filler, never a partial item
                return noise.unit(i)
            return block_units(i // _BLOCK)[i % _BLOCK]

        def pieces(i: int) -> list[str]:
            if i < 0:
                return [noise.unit(i)]
            # Cut before every space: a byte-level tokenizer never merges across one, and the words, sums
            # and item numbers recur from sample to sample, so each is counted once.
            words = block_bodies(i // _BLOCK)[i % _BLOCK].split(" ")
            return [f"\n{i + 1}.", *(" " + word for word in words)]

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            end = start + count
            numbered = indexed_counts(backend, "instruction_exam item heads", np.arange(start, end), _head)
            key = backend.tokenizer_fingerprint()
            parts = []
            for b in range(start // _BLOCK, (end - 1) // _BLOCK + 1):
                if (key, b) not in block_counts:
                    block_counts[key, b] = draws.body_counts(backend, b, self.layout != "global")
                parts.append(
                    block_counts[key, b][
                        max(start, b * _BLOCK) - b * _BLOCK : min(end, (b + 1) * _BLOCK) - b * _BLOCK
                    ]
                )
            return np.concatenate(parts) + numbered

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
        return _Exam(make, pieces, unit_counts, item, intro + "\n\n{context}\n\n{question}", question, asked)


def _head(i: int) -> str:
    return f"\n{i + 1}."

"""Needle threading: follow chains of key -> value records, where each value is the next record's key."""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import uuid
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, Needle, blocked_counts, corpus, counts_by_text
from longscope.tasks.base import Task, prompt_tokens

Direction = Literal["forward", "backward"]

TEMPLATE = (
    "Below is a list of records, one per line, each written as `key -> value`. Keys and values are random "
    "identifiers. Some values are also the key of another record, which links records into threads. "
    "Read the list closely; afterwards you will be asked to follow threads through it.\n\n"
    "{context}\n\n{question}"
)


def _ident(rng: random.Random) -> str:
    """A UUID-like random hex identifier: every key and value looks alike, thread or not."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _record(key: str, value: str) -> str:
    # Each record starts with its newline, so it counts the same alone as in place and sits on its own line.
    return f"\n{key} -> {value}"


# An identifier's runs of hex letters, its single digits and its dashes: where tokenizers that split digits
# one by one (SmolLM2's, Llama 2's) cut it anyway, and pieces few enough to recur in every sample.
_ID_PIECES = re.compile(r"[a-f]+|[0-9]|-")


def _record_pieces(key: str, value: str) -> list[str]:
    """``_record(key, value)`` cut into pieces that recur: its identifiers' runs, the arrow and the breaks."""
    value_pieces = _ID_PIECES.findall(value)
    return ["\n", *_ID_PIECES.findall(key), " ->", " " + value_pieces[0], *value_pieces[1:]]


# Distractor records drawn together (one generator per block).
_BLOCK = 1024
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where an identifier's 32 hex digits go among its 36 characters (8-4-4-4-12, dashes between).
_HEX_AT = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _identifiers(g: np.random.Generator, count: int) -> list[str]:
    """``count`` identifiers drawn as ``_ident`` draws them, uniform over version-4 UUIDs, from ``g``."""
    raw = np.frombuffer(g.bytes(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # the RFC 4122 variant
    chars = np.full((count, 36), ord("-"), dtype=np.uint8)
    chars[:, _HEX_AT] = _HEX[np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(count, 32)]
    text = chars.tobytes().decode("ascii")
    return [text[i : i + 36] for i in range(0, 36 * count, 36)]


def _distractor_pairs(base: int, block: int, taken: frozenset[str]) -> tuple[list[str], list[str]]:
    """Block ``block``'s distractor records as keys and values: fresh identifiers, none of them a thread's
    (a clash is all but impossible; redrawing it makes "no accidental links" a guarantee)."""
    g = np.random.Generator(np.random.PCG64([base, block]))
    drawn = _identifiers(g, 2 * _BLOCK)
    for i, ident in enumerate(drawn):
        while ident in taken:
            ident = _identifiers(g, 1)[0]
        drawn[i] = ident
    return drawn[:_BLOCK], drawn[_BLOCK:]


def _record_counts(backend: Backend, keys: list[str], values: list[str]) -> np.ndarray:
    """The sums of ``_record_pieces``' counts for each record, worked out over all identifiers at once: the
    break and the arrow, every digit and dash, every run of hex letters, and the value's first piece counted
    with the space before it."""
    count = len(keys)
    chars = np.frombuffer("".join(keys + values).encode("ascii"), dtype=np.uint8).reshape(2 * count, 36)
    singles = [*"0123456789", "-"]
    single_counts = np.zeros(256, dtype=np.int64)
    single_counts[[ord(c) for c in singles]] = counts_by_text(backend, singles)
    per_ident = single_counts[chars].sum(axis=1)

    letter = chars >= ord("a")
    starts = letter.copy()
    starts[:, 1:] &= ~letter[:, :-1]
    run_starts = np.flatnonzero(starts)
    run = np.cumsum(starts.ravel())[letter.ravel()] - 1
    # Each run as a number in base 7 (a..f are 1..6, its first letter lowest), so runs are told apart and
    # counted once each without cutting every identifier into strings.
    offset = np.flatnonzero(letter) - run_starts[run]
    digit = chars[letter].astype(np.float64) - (ord("a") - 1)
    codes = np.bincount(run, weights=digit * 7.0**offset).astype(np.int64)
    distinct, which = np.unique(codes, return_inverse=True)
    runs = _runs_of(distinct)
    run_counts = np.array(counts_by_text(backend, runs), dtype=np.int64)
    owner = run_starts // 36
    per_ident += np.bincount(owner, weights=run_counts[which], minlength=2 * count).astype(np.int64)

    # The value's first piece: a digit, or its first letter run (which then starts at its first character).
    value_rows = np.arange(count, 2 * count)
    leads_with_run = letter[value_rows, 0]
    first_run = np.searchsorted(run_starts, value_rows * 36)
    lead_digits = [chr(c) for c in chars[value_rows, 0].tolist()]
    first = [
        runs[w] if by_run else d
        for w, by_run, d in zip(
            which[np.where(leads_with_run, first_run, 0)].tolist(),
            leads_with_run.tolist(),
            lead_digits,
            strict=True,
        )
    ]
    alone = np.array(counts_by_text(backend, first), dtype=np.int64)
    spaced = np.array(counts_by_text(backend, [" " + piece for piece in first]), dtype=np.int64)
    fixed = sum(counts_by_text(backend, ["\n", " ->"]))
    return fixed + per_ident[:count] + per_ident[count:] + spaced - alone


def _runs_of(codes: np.ndarray) -> list[str]:
    """The letter runs that ``_record_counts``' base-7 numbers stand for."""
    letters = np.zeros((len(codes), 12), dtype=np.uint8)  # no run is longer than the 12-digit last group
    rest = codes.copy()
    for place in range(12):
        rest, d = np.divmod(rest, 7)
        letters[:, place] = np.where(d > 0, d + (ord("a") - 1), 0)
    return letters.view("S12").ravel().astype("U12").tolist()


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _steps(hops: int) -> str:
    return "1 step" if hops == 1 else f"{hops} steps"


class _Plan(NamedTuple):
    """Everything a sample asks, drawn from the seed alone so every length asks the same questions."""

    turns: tuple[Turn, ...]
    needles: list[Needle]
    thread_ids: frozenset[str]
    base: int  # seeds the distractor records


@dataclass(frozen=True)
class Threading(Task):
    """Follow ``threads`` threads of ``hops`` records each through a list of look-alike records.

    A thread is ``k0 -> k1``, ``k1 -> k2``, ... ``k(h-1) -> kh``. Forward asks for ``kh`` given ``k0``;
    backward gives ``kh`` and asks for ``k0``. The thread records are needles at depths drawn from the seed;
    every other record is a distractor with fresh identifiers, so no distractor links to anything.

    ``questions`` > 1 asks several turns of one haystack: ``questions * threads`` threads are laid in it and
    turn t asks about the t-th group of ``threads`` of them; to any one turn the other turns' threads are
    look-alikes that do link. The first turn's request is exactly the target length; a later turn's differs
    by the few tokens its identifiers differ by.
    """

    name: ClassVar[str] = "threading"
    description: ClassVar[str] = "follow a thread of key -> value records for some hops; return where it ends"
    metric: ClassVar[str] = "contains_all"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("hops", "threads")

    hops: int = 3
    threads: int = 1
    direction: Direction = "forward"
    max_new_tokens: int = 64
    questions: int = 1

    def cache_token(self) -> str:
        # The distractor records are drawn by numpy blocks now, not a generator per record: other bytes.
        return "block-draws-v2"

    @property
    def diffusion(self) -> float:
        # Every record looks alike, so even one hop is a needle among look-alikes; walking backwards means
        # searching by value, which the record layout does not mark the way it marks keys.
        return round(0.5 + 0.2 * (self.direction == "backward"), 2)

    @property
    def scope(self) -> float:
        # Each hop of each thread is one more fact that must be found.
        facts = self.hops * self.threads
        return round(min(0.9, 0.05 * facts), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        for field_name in ("hops", "threads", "questions"):
            if getattr(self, field_name) < 1:
                raise UsageError(
                    f"{self.label()}: {field_name}={getattr(self, field_name)} must be at least 1"
                )
        if self.direction not in ("forward", "backward"):
            raise UsageError(f"{self.label()}: direction must be forward or backward")
        # The thread records must fit beside the instructions and question, measured on seed 0's plan. One
        # hop is enough to measure a record; one thread first, so a huge request fails before its long
        # question is drawn (more threads only lengthen the question).
        records = self.hops * self.threads * self.questions
        probes = [dataclasses.replace(self, hops=1, threads=1)]
        if self.threads > 1:
            probes.append(dataclasses.replace(self, hops=1))
        for probe in probes:
            plan = probe._plan(0)
            first = plan.turns[0]
            empty = prompt_tokens(backend, TEMPLATE, first.question, first.answer_prefix, "")
            record = plan.needles[0].text.lstrip()
            per_record = max(
                1, prompt_tokens(backend, TEMPLATE, first.question, first.answer_prefix, record) - empty
            )
            room = length - self.max_new_tokens - empty
            if records * per_record > room:
                times = f" x questions={self.questions}" if self.questions > 1 else ""
                raise UsageError(
                    f"{self.label()}: hops={self.hops} x threads={self.threads}{times} = {records} thread "
                    f"records of about {per_record} tokens each do not fit at length {length}; at most "
                    f"{max(0, room // per_record)} records fit (lower hops, threads or questions, or raise "
                    "the length)"
                )

    def _plan(self, seed: int) -> _Plan:
        rng = self.rng(seed)
        chains: list[list[str]] = []
        seen: set[str] = set()
        for _ in range(self.threads * self.questions):
            chain: list[str] = []
            while len(chain) < self.hops + 1:
                ident = _ident(rng)
                if ident not in seen:
                    seen.add(ident)
                    chain.append(ident)
            chains.append(chain)
        needles = [
            Needle(_record(chain[i], chain[i + 1]), round(rng.random(), 4))
            for chain in chains
            for i in range(self.hops)
        ]
        turns = []
        for first in range(0, len(chains), self.threads):
            group = chains[first : first + self.threads]
            start, end = (0, -1) if self.direction == "forward" else (-1, 0)
            question, prefix = self._question([chain[start] for chain in group])
            turns.append(Turn(question, tuple(chain[end] for chain in group), prefix))
        return _Plan(tuple(turns), needles, frozenset(seen), rng.getrandbits(64))

    def _question(self, asked: list[str]) -> tuple[str, str]:
        steps = _steps(self.hops)
        if self.direction == "forward":
            how = (
                "Start at the key, read its value, then treat that value as a key and read its value, and so "
                f"on: {steps} in all, one record per step."
            )
            if len(asked) == 1:
                return (
                    f"Follow the thread that starts at the key {asked[0]}. {how} What value do you reach?",
                    "The value reached is",
                )
            return (
                f"Follow each of the threads that start at the keys {_join(asked)}. {how} "
                "What value does each thread reach? List them in the same order.",
                "The values reached are:",
            )
        how = (
            "Find the record whose value it is, then the record whose value is that record's key, and so on: "
            f"{steps} back in all, one record per step."
        )
        if len(asked) == 1:
            return (
                f"The value {asked[0]} ends a thread. Walk the thread backwards. {how} "
                "Which key starts the thread?",
                "The key that starts the thread is",
            )
        return (
            f"The values {_join(asked)} each end a thread. Walk each thread backwards. {how} "
            "Which key starts each thread? List them in the same order.",
            "The keys that start the threads are:",
        )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        if self.questions != 1:  # a single question builds exactly as it did before the parameter existed
            self.check(backend, length)
        plan = self._plan(seed)

        # Seeding a generator per record cost most of a 128k build: a whole block of records' identifiers
        # is drawn at once, from a generator seeded by the sample and the block.
        @functools.cache
        def block(b: int) -> tuple[list[str], list[str]]:
            """The block's keys and values."""
            return _distractor_pairs(plan.base, b, plan.thread_ids)

        def make(i: int) -> str:
            if i < 0:
                # Text before the stream pads the first few tokens: plain filler, never a partial record.
                return corpus("noise").unit(i)
            keys, values = block(i // _BLOCK)
            return _record(keys[i % _BLOCK], values[i % _BLOCK])

        def pieces(i: int) -> list[str]:
            if i < 0:
                return [corpus("noise").unit(i)]
            keys, values = block(i // _BLOCK)
            return _record_pieces(keys[i % _BLOCK], values[i % _BLOCK])

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            """The sums of ``pieces``' counts for records ``start`` on, worked out over whole identifiers."""
            return blocked_counts(start, count, _BLOCK, lambda b: _record_counts(backend, *block(b)))

        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=list(plan.turns),
            source=GeneratedUnits(make, name="threading", pieces=pieces, unit_counts=unit_counts),
            needles=plan.needles,
            metadata={
                "hops": self.hops,
                "threads": self.threads,
                "direction": self.direction,
                **_turn_evidence(plan.needles, self.questions, self.threads * self.hops),
            },
        )


def _turn_evidence(needles: list[Needle], questions: int, per_turn: int) -> dict:
    """Each question's own records (its threads' links, in plan order), when a sample asks several."""
    if questions == 1:
        return {}
    texts = [n.text.strip() for n in needles]
    return {"turn_evidence": [texts[t * per_turn : (t + 1) * per_turn] for t in range(questions)]}


@dataclass(frozen=True)
class MultiThreading(Threading):
    name: ClassVar[str] = "multi_threading"
    description: ClassVar[str] = "follow several threads of key -> value records at once; return every end"
    threads: int = 3
    max_new_tokens: int = 160

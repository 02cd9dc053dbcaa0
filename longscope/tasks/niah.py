"""Needle in a haystack, RULER-style: single needle, distractor keys, several values, several queries, and an
all-needle haystack."""

from __future__ import annotations

import functools
import random
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import CORPORA, FittedContext, GeneratedUnits, Needle, UnitSource, corpus
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

ItemType = Literal["word", "number", "uuid"]

# "needles" is not a corpus: its filler is made of needle-format sentences with other keys (see _needle_filler).
HAYSTACKS = (*CORPORA, "needles")

_KIND = {"number": "secret number", "word": "secret word", "uuid": "secret code"}

TEMPLATE = (
    "Hidden in the text below are some {kind}s, each written next to a name. Read the text closely; "
    "afterwards you will be asked about them.\n\n{{context}}\n\n{{question}}"
)


def _item(kind: ItemType, rng: random.Random) -> str:
    if kind == "number":
        return str(rng.randint(1_000_000, 9_999_999))
    if kind == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return rng.choice(NOUNS)


def _key(kind: ItemType, rng: random.Random) -> str:
    if kind == "word":
        return f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
    return _item(kind, rng)


def _distinct(make, count: int) -> list[str]:
    seen: list[str] = []
    for _ in range(count * 50):
        item = make()
        if item not in seen:
            seen.append(item)
        if len(seen) == count:
            return seen
    raise UsageError(f"cannot draw {count} distinct items; ask for fewer needles")


# Filler records are read from a fixed pool of this many, from a seed-chosen offset: a record recurs across
# samples, so its token count is known after the first few samples instead of tokenising 128k tokens of
# fresh records per sample. A 128k context holds fewer records than this (about 9,000 with word keys).
FILLER_POOL = 1 << 14


def _needle_filler(
    kind: str, key_type: ItemType, value_type: ItemType, exclude: set[str], base: int
) -> GeneratedUnits:
    """An all-needle haystack (RULER's "needle" haystack): every unit reads exactly like a needle, with a
    random key that never equals a needle's key, so only the asked key itself tells the real needle apart."""
    noise = corpus("noise")

    def make(i: int) -> str:
        if i < 0:
            # Text before the stream only pads the first few tokens: a cut record there would read as data.
            return noise.unit(i)
        key, value = _pool_record(key_type, value_type, (base + i) % FILLER_POOL)
        if key in exclude:
            # A pool record that names an asked key is replaced by one drawn for this sample's place.
            unit_rng = random.Random(f"{base}-{i}")
            while key in exclude:
                key = _key(key_type, unit_rng)
            value = _item(value_type, unit_rng)
        return f" The {kind} for {key} is {value}."

    return GeneratedUnits(make, name="needles")


@functools.cache
def _pool_record(key_type: ItemType, value_type: ItemType, slot: int) -> tuple[str, str]:
    """The key and value of one filler record of the pool: drawn once per process, as seeding a generator per
    record costs more than the rest of a sample."""
    rng = random.Random(f"needles-{key_type}-{value_type}-{slot}")
    return _key(key_type, rng), _item(value_type, rng)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Niah(Task):
    """Find the values written next to the asked key(s) among haystack text and, optionally, look-alikes.

    ``num_keys`` needles carry distinct keys; the first ``num_queries`` of them are asked about, the rest are
    distractors. Each asked key carries ``num_values`` values. The first needle sits at the requested depth;
    the others at depths drawn from the seed.

    ``questions`` > 1 asks several turns of one haystack. The ``num_keys - num_queries`` distractors are
    never asked; each turn asks ``num_queries`` keys of its own, so the haystack holds
    ``num_keys + (questions - 1) * num_queries`` keys and, to any one turn, every needle but its own is a
    look-alike. The first turn's request is exactly the target length; a later turn's differs by the few
    tokens its question's keys differ by.
    """

    name: ClassVar[str] = "niah"
    description: ClassVar[str] = "one marked needle in the haystack; return its value"
    metric: ClassVar[str] = "contains_all"
    uses_depth: ClassVar[bool] = True

    haystack: Literal["essay", "noise", "needles"] = "essay"
    key_type: ItemType = "word"
    value_type: ItemType = "number"
    num_keys: int = 1
    num_values: int = 1
    num_queries: int = 1
    max_new_tokens: int = 64
    questions: int = 1

    @property
    def diffusion(self) -> float:
        # Look-alike needles make the right one harder to find; a natural-prose haystack blends in more, and a
        # haystack made only of needle-format sentences leaves the asked key as the one cue.
        distractors = self.keys_laid - self.num_queries  # to any one turn, the other turns' needles too
        blend = {"noise": 0.0, "essay": 0.1, "needles": 0.6}[self.haystack]
        return round(min(1.0, 0.1 + blend + 0.1 * min(distractors, 3)), 2)

    @property
    def keys_laid(self) -> int:
        """Distinct keys in the haystack: the distractors plus every turn's asked keys."""
        return self.num_keys + (self.questions - 1) * self.num_queries

    @property
    def scope(self) -> float:
        facts = self.num_queries * self.num_values
        return round(min(1.0, 0.05 + 0.05 * (facts - 1)), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.haystack not in HAYSTACKS:
            raise UsageError(f"{self.label()}: haystack must be one of {', '.join(HAYSTACKS)}")
        for field_name in ("num_keys", "num_values", "num_queries", "questions"):
            if getattr(self, field_name) < 1:
                raise UsageError(f"{self.label()}: {field_name} must be at least 1")
        if self.num_queries > self.num_keys:
            raise UsageError(
                f"{self.label()}: num_queries={self.num_queries} exceeds num_keys={self.num_keys}; "
                "every asked key needs a needle"
            )
        if self.questions > 1:
            # Every needle must fit beside the instructions and the first question (measured on seed 0).
            _, needles, turns = self._draw(self.rng(0), 0.5)
            user = TEMPLATE.format(kind=_KIND[self.value_type]).format(
                context=" ".join(needle.text for needle in needles), question=turns[0].question
            )
            floor = backend.count_tokens(
                backend.render([{"role": "user", "content": user}], turns[0].answer_prefix)
            )
            if floor > length - self.max_new_tokens:
                raise UsageError(
                    f"{self.label()}: questions={self.questions} lays {len(needles)} needles, which with the "
                    f"instructions take about {floor} tokens; only {length - self.max_new_tokens} are left at "
                    f"length {length} after the output budget (lower questions or raise the length)"
                )

    def _draw(self, rng: random.Random, first_depth: float) -> tuple[list[str], list[Needle], list[Turn]]:
        """The keys, the needles and one turn per question, drawn from ``rng`` (keys, values, depths)."""
        kind = _KIND[self.value_type]
        keys = _distinct(lambda: _key(self.key_type, rng), self.keys_laid)
        asked = keys[: self.num_queries * self.questions]
        values = {
            key: _distinct(lambda: _item(self.value_type, rng), self.num_values if key in asked else 1)
            for key in keys
        }
        facts = [(key, value) for key in keys for value in values[key]]
        needles = [Needle(f"The {kind} for {key} is {value}.", first_depth) for key, value in facts[:1]]
        needles += [
            Needle(f"The {kind} for {key} is {value}.", round(rng.random(), 4)) for key, value in facts[1:]
        ]
        turns = []
        for first in range(0, len(asked), self.num_queries):
            turn_keys = asked[first : first + self.num_queries]
            question, prefix = self._question(kind, turn_keys)
            answers = tuple(value for key in turn_keys for value in values[key])
            turns.append(Turn(question=question, answers=answers, answer_prefix=prefix))
        return keys, needles, turns

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        if self.questions != 1:  # a single question builds exactly as it did before the parameter existed
            self.check(backend, length)
        rng = self.rng(seed)
        kind = _KIND[self.value_type]
        first_depth = 0.5 if depth is None else depth
        keys, needles, turns = self._draw(rng, first_depth)
        asked = keys[: self.num_queries * self.questions]
        asked_prefixes = tuple(f"The {kind} for {key} is " for key in asked)
        metadata: dict[str, Any] = {}
        if self.questions > 1:  # each question's own needles
            per_turn = [
                asked_prefixes[t * self.num_queries : (t + 1) * self.num_queries]
                for t in range(self.questions)
            ]
            metadata["turn_evidence"] = [[n.text for n in needles if n.text.startswith(p)] for p in per_turn]

        def turn_depths(fitted: FittedContext) -> list[tuple[str, ...]]:
            # Where each turn's first asked needle landed: the depth a turn is scored at (the needles come in
            # key order, the asked keys first, each with its ``num_values`` values).
            metadata["turn_depths"] = [
                fitted.needle_depths[t * self.num_queries * self.num_values] for t in range(self.questions)
            ]
            return [turn.answers for turn in turns]

        body: UnitSource
        if self.haystack == "needles":
            # Drawn last and only here, so the corpus haystacks draw exactly what they always drew.
            body = _needle_filler(kind, self.key_type, self.value_type, set(keys), rng.getrandbits(64))
            start = 0
        else:
            body = corpus(self.haystack)
            start = rng.randrange(len(body.sentences))
        return self.make_sample(
            backend,
            length=length,
            depth=first_depth,
            seed=seed,
            template=TEMPLATE.format(kind=kind),
            turns=turns,
            source=body,
            start=start,
            needles=needles,
            answers_after_fit=turn_depths if self.questions > 1 else None,
            metadata=metadata,
            # The asked keys' needles: the other keys' needles are look-alikes, not evidence.
            evidence=[n.text for n in needles if n.text.startswith(asked_prefixes)],
        )

    def _question(self, kind: str, asked: list[str]) -> tuple[str, str]:
        if self.num_queries == 1 and self.num_values == 1:
            return (f"What is the {kind} for {asked[0]} in the text above?", f"The {kind} for {asked[0]} is")
        return (
            f"What are all the {kind}s for {_join(asked)} in the text above?",
            f"The {kind}s for {_join(asked)} are:",
        )


@dataclass(frozen=True)
class NiahMultiKey(Niah):
    name: ClassVar[str] = "niah_multikey"
    description: ClassVar[str] = "one asked needle among look-alike needles with other keys"
    num_keys: int = 4


@dataclass(frozen=True)
class NiahMultiValue(Niah):
    name: ClassVar[str] = "niah_multivalue"
    description: ClassVar[str] = "one key with several values spread through the haystack; return them all"
    num_values: int = 4
    max_new_tokens: int = 96


@dataclass(frozen=True)
class NiahMultiQuery(Niah):
    name: ClassVar[str] = "niah_multiquery"
    description: ClassVar[str] = "several keys asked at once, one value each; return every value"
    num_keys: int = 4
    num_queries: int = 4
    max_new_tokens: int = 96

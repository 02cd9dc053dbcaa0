"""Distraction: a needle beside near-duplicate false facts, and a needle asked about in other words."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


# Keys that differ slightly from the true key "adj-noun": each names someone else, so its value is not the
# asked one. The statements are worded exactly like the true needle.
_NEAR_KEYS = (
    lambda adj, noun: f"{adj}-{_plural(noun)}",
    lambda adj, noun: f"{adj} {noun}",
    lambda adj, noun: f"{adj}-{noun}'s cousin",
    lambda adj, noun: f"{noun}-{adj}",
    lambda adj, noun: f"little {adj}-{noun}",
    lambda adj, noun: f"{adj}-{noun} junior",
)

# Statements about the true key itself that say outright that their value is wrong or out of date. None has
# the true needle's form "The secret number for KEY is VALUE."
_MARKED_FALSE = (
    "An old note wrongly gave the secret number for {key} as {value}.",
    "The secret number for {key} used to be {value}, but that number is out of date.",
    "Some copies misprint the secret number for {key} as {value}; that figure is wrong.",
    "Do not trust the draft that lists {value} as the secret number for {key}.",
    "A common mistake is to write {value} as the secret number for {key}.",
)

MAX_CONFUSING = len(_NEAR_KEYS) + len(_MARKED_FALSE)

TEMPLATE = (
    "Hidden in the text below are some secret numbers, each written next to a name. Read the text closely; "
    "afterwards you will be asked about one of them.\n\n{context}\n\n{question}"
)


def _near_value(value: str, rng: random.Random) -> str:
    """A look-alike of a 7-digit number: two neighbouring digits swapped, or one digit changed. The first digit
    stays, so the look-alike never starts with 0 and keeps its length."""
    digits = list(value)
    if rng.random() < 0.5:
        i = rng.randrange(1, len(digits) - 1)
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    else:
        i = rng.randrange(1, len(digits))
        digits[i] = rng.choice([d for d in "0123456789" if d != digits[i]])
    return "".join(digits)


@dataclass(frozen=True)
class ConfusingFacts(Task):
    """The true needle "The secret number for KEY is N." with ``distractors`` false facts right beside it (at
    the same depth, in a seeded order): look-alike keys (plural, spaced, "KEY's cousin"...) and statements
    about KEY itself marked as wrong or out of date, each with a look-alike of N. Score 1 only for the true
    number given without any of the false ones."""

    name: ClassVar[str] = "confusing_facts"
    description: ClassVar[str] = (
        "one true fact among near-duplicate false facts beside it; return only the true value"
    )
    metric: ClassVar[str] = "contains_only"
    uses_depth: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("distractors",)

    distractors: int = 3
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # The false facts sit beside the true one and read almost the same; each one more is another near miss.
        return round(min(1.0, 0.65 + 0.05 * min(self.distractors, 3)), 2)

    @property
    def scope(self) -> float:
        return 0.1

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if not 0 <= self.distractors <= MAX_CONFUSING:
            raise UsageError(
                f"{self.label()}: distractors={self.distractors} must be between 0 and {MAX_CONFUSING} "
                "(the number of built-in kinds of false fact)"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        adj, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        key = f"{adj}-{noun}"
        value = str(rng.randint(1_000_000, 9_999_999))
        false_values: list[str] = []
        while len(false_values) < self.distractors:
            candidate = _near_value(value, rng)
            if candidate != value and candidate not in false_values:
                false_values.append(candidate)
        # Both kinds of false fact in turn, starting with either, so a few distractors still mix them.
        near = rng.sample(_NEAR_KEYS, len(_NEAR_KEYS))
        marked = rng.sample(_MARKED_FALSE, len(_MARKED_FALSE))
        kinds = [near, marked] if rng.random() < 0.5 else [marked, near]
        pool = [group[i] for i in range(max(map(len, kinds))) for group in kinds if i < len(group)]
        facts = [f"The secret number for {key} is {value}."]
        for make, false_value in zip(pool, false_values, strict=False):
            if isinstance(make, str):
                facts.append(make.format(key=key, value=false_value))
            else:
                facts.append(f"The secret number for {make(adj, noun)} is {false_value}.")
        rng.shuffle(facts)
        first_depth = 0.5 if depth is None else depth
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=first_depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(
                    question=f"What is the secret number for {key}? Give only its true, current value.",
                    answers=(value,),
                    forbidden=tuple(false_values),
                    answer_prefix=f"The secret number for {key} is",
                )
            ],
            source=body,
            start=rng.randrange(len(body.sentences)),
            # All at one depth: the fitter puts needles of one boundary together, in this (shuffled) order.
            needles=[Needle(fact, first_depth) for fact in facts],
            metadata={"distractors": self.distractors},
            evidence=[f"The secret number for {key} is {value}."],
        )


# Synonym classes: a needle names a place with one word of an adjective class and one of a noun class, and
# the question with other words of the same classes. No word is inside another word of its class, so the
# question's words never occur in the needle's key; classes are far enough apart that no two keys of
# different class pairs can mean the same place.
ADJECTIVE_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("crimson", "red", "scarlet"),
    ("azure", "blue", "cobalt"),
    ("emerald", "green", "verdant"),
    ("ancient", "old", "aged"),
    ("tiny", "small", "little"),
    ("huge", "big", "enormous"),
    ("silent", "quiet", "hushed"),
    ("frozen", "icy", "frigid"),
    ("gloomy", "dark", "shadowy"),
    ("bright", "radiant", "shining"),
    ("wealthy", "rich", "affluent"),
    ("damp", "wet", "soggy"),
    ("lonely", "solitary", "isolated"),
    ("sacred", "holy", "hallowed"),
)
NOUN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("harbour", "port", "haven"),
    ("mountain", "peak", "summit"),
    ("forest", "woods", "woodland"),
    ("castle", "fortress", "citadel"),
    ("stream", "brook", "creek"),
    ("path", "trail", "track"),
    ("meadow", "field", "pasture"),
    ("tower", "spire", "turret"),
    ("shop", "store", "boutique"),
    ("boat", "vessel", "ship"),
    ("house", "dwelling", "residence"),
    ("cavern", "grotto"),
    ("valley", "vale", "dale"),
    ("island", "isle"),
    ("market", "bazaar"),
    ("clock", "timepiece"),
    ("lamp", "lantern"),
)

MAX_SUBSTITUTION_DISTRACTORS = 20

SUBSTITUTION_TEMPLATE = (
    "Hidden in the text below are some access codes, each written next to a place. Read the text closely; "
    "afterwards you will be asked about one of them. The question may name the place in other words that "
    "mean the same.\n\n{context}\n\n{question}"
)


@dataclass(frozen=True)
class KeywordSubstitution(Task):
    """One needle "The access code for the crimson harbour is N." asked as "... for the red port?": the
    question's words are synonyms of the key's, so a plain string search for them finds no key. The
    ``distractors`` other needles are lexical traps first (the question's own adjective or noun, or the key's,
    with a word of another class: "the red tower", "the frozen port") and then other places, each of a class
    pair of its own, at depths drawn from the seed."""

    name: ClassVar[str] = "keyword_substitution"
    description: ClassVar[str] = "the question names the needle's key by synonyms; return its value"
    metric: ClassVar[str] = "contains_only"
    uses_depth: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("distractors",)

    distractors: int = 3
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # Nothing in the needle matches the question's words; traps that do match make it harder still.
        return round(min(1.0, 0.75 + 0.05 * min(self.distractors, 3)), 2)

    @property
    def scope(self) -> float:
        return 0.05

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if not 0 <= self.distractors <= MAX_SUBSTITUTION_DISTRACTORS:
            raise UsageError(
                f"{self.label()}: distractors={self.distractors} must be between 0 and "
                f"{MAX_SUBSTITUTION_DISTRACTORS}"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        a_class = rng.randrange(len(ADJECTIVE_SYNONYMS))
        n_class = rng.randrange(len(NOUN_SYNONYMS))
        key_adj, ask_adj = rng.sample(ADJECTIVE_SYNONYMS[a_class], 2)
        key_noun, ask_noun = rng.sample(NOUN_SYNONYMS[n_class], 2)
        places = self._distractor_places(rng, a_class, n_class, [ask_adj, key_adj], [ask_noun, key_noun])
        values: list[str] = []
        while len(values) < 1 + len(places):
            candidate = str(rng.randint(1_000_000, 9_999_999))
            if candidate not in values:
                values.append(candidate)
        first_depth = 0.5 if depth is None else depth
        needles = [Needle(f"The access code for the {key_adj} {key_noun} is {values[0]}.", first_depth)]
        needles += [
            Needle(f"The access code for the {place} is {value}.", round(rng.random(), 4))
            for place, value in zip(places, values[1:], strict=True)
        ]
        asked = f"the {ask_adj} {ask_noun}"
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=first_depth,
            seed=seed,
            template=SUBSTITUTION_TEMPLATE,
            turns=[
                Turn(
                    question=f"What is the access code for {asked}?",
                    answers=(values[0],),
                    forbidden=tuple(values[1:]),
                    answer_prefix=f"The access code for {asked} is",
                )
            ],
            source=body,
            start=rng.randrange(len(body.sentences)),
            needles=needles,
            metadata={"distractors": self.distractors},
            evidence=[needles[0].text],  # the others are the look-alike places' codes
        )

    def _distractor_places(
        self, rng: random.Random, a_class: int, n_class: int, adjs: list[str], nouns: list[str]
    ) -> list[str]:
        """``distractors`` places, each of its own (adjective class, noun class) pair and none of the key's."""
        used = {(a_class, n_class)}
        places: list[str] = []

        def add(adj_class: int, adj: str, noun_class: int, noun: str) -> None:
            used.add((adj_class, noun_class))
            places.append(f"{adj} {noun}")

        # The traps: the question's adjective, the question's noun, the key's adjective, the key's noun, each
        # beside a word of another class (a class pair not used yet).
        for adj, noun in zip(adjs, nouns, strict=True):
            if len(places) < self.distractors:
                c = rng.choice([c for c in range(len(NOUN_SYNONYMS)) if (a_class, c) not in used])
                add(a_class, adj, c, rng.choice(NOUN_SYNONYMS[c]))
            if len(places) < self.distractors:
                c = rng.choice([c for c in range(len(ADJECTIVE_SYNONYMS)) if (c, n_class) not in used])
                add(c, rng.choice(ADJECTIVE_SYNONYMS[c]), n_class, noun)
        while len(places) < self.distractors:
            pair = (rng.randrange(len(ADJECTIVE_SYNONYMS)), rng.randrange(len(NOUN_SYNONYMS)))
            if pair not in used:
                add(
                    pair[0],
                    rng.choice(ADJECTIVE_SYNONYMS[pair[0]]),
                    pair[1],
                    rng.choice(NOUN_SYNONYMS[pair[1]]),
                )
        return places

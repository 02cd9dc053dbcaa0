"""Latent needles (after NoLiMa): the needle and the question share almost no words; a one-hop association joins them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks._associations import CHARACTERS, LANDMARKS
from longscope.tasks._room import require_room
from longscope.tasks.base import Task

MAX_DISTRACTORS = 20

TEMPLATE = (
    "The text below mentions a few characters and where they live. Read it closely; afterwards you will be "
    "asked about one of them.\n\n{context}\n\n{question} Answer with the character's name only."
)
PREFIX = "The character is"

# What the question names -> (needle forms, question forms). The needle always holds the other half of the
# association: with ask=landmark the needle names the city and the question a landmark in it (the model must
# know where the landmark stands); with ask=city, NoLiMa's own direction, the needle names the landmark.
FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "landmark": (
        (
            "Actually, {name} has lived in {city} for many years.",
            "{name} moved to {city} as a child and stayed.",
            "These days {name} lives in {city}.",
        ),
        (
            "Which character could walk to {landmark} in a few minutes?",
            "Which character lives near {landmark}?",
            "Which character has spent many years close to {landmark}?",
        ),
    ),
    "city": (
        (
            "Actually, {name} lives next to {landmark}.",
            "Every morning {name} jogs past {landmark}.",
            "From a small flat, {name} looks out over {landmark}.",
        ),
        (
            "Which character has been to {city}?",
            "Which character lives in {city}?",
            "Which character knows the streets of {city} well?",
        ),
    ),
}

# Words too common to count as shared between a question and a needle.
FUNCTION_WORDS = frozenset(
    "a an the of to in on at for from by with and or as is are was has have had be been it its this that "
    "which who what".split()
)


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in FUNCTION_WORDS}


def overlap(question: str, needle: str) -> int:
    """Distinct words, function words aside and case ignored, that the question and the needle share."""
    return len(words(question) & words(needle))


@dataclass(frozen=True)
class LatentNeedles(Task):
    """Find the one character whose home the question only implies.

    Each needle places a character in a city (``ask=landmark``) or beside a landmark (``ask=city``); the question
    names the other half, so it shares almost no words with the needle and answering takes knowing which city
    the landmark stands in. ``distractors`` more needles of the same form place other characters in other
    cities, so the only name in the text is no shortcut; their names are forbidden answers. The asked needle
    sits at the requested depth, the others at depths drawn from the seed. ``metadata["overlap"]`` counts the
    words the question and the asked needle share (function words aside), for score against overlap.
    """

    name: ClassVar[str] = "latent_needles"
    description: ClassVar[str] = "the question implies the needle through a landmark-city association only"
    metric: ClassVar[str] = "contains_only"
    uses_depth: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("overlap", "ask")

    ask: Literal["landmark", "city"] = "landmark"
    distractors: int = 3
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # No words to match: the needle is found only through the association; same-form needles with other
        # cities make it harder still.
        return round(min(1.0, 0.7 + 0.05 * min(self.distractors, 4)), 2)

    @property
    def scope(self) -> float:
        return 0.05  # one fact (plus what the model already knows)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if self.ask not in FORMS:
            raise UsageError(f"{self.label()}: ask must be one of {', '.join(FORMS)}")
        if not 0 <= self.distractors <= MAX_DISTRACTORS:
            raise UsageError(
                f"{self.label()}: distractors={self.distractors} must be between 0 and {MAX_DISTRACTORS}"
            )
        question, needles, _, _, _ = self._draw(0, 0.5)
        require_room(
            backend,
            label=self.label(),
            length=length,
            max_new_tokens=self.max_new_tokens,
            template=TEMPLATE,
            question=question,
            prefix=PREFIX,
            texts=[" " + n.text for n in needles],
            what=f"{len(needles)} needles",
            fix="lower distractors",
        )

    def _draw(self, seed: int, first_depth: float) -> tuple[str, list[Needle], list[str], dict, int]:
        """The question, the needles (the asked one first), the characters named, the facts asked and the
        haystack's first sentence: from the seed alone, so every length asks the same question."""
        rng = self.rng(seed)
        landmark, city = LANDMARKS[rng.randrange(len(LANDMARKS))]
        others = sorted({c for _, c in LANDMARKS} - {city})
        cities = [city, *rng.sample(others, self.distractors)]
        names = rng.sample(CHARACTERS, self.distractors + 1)
        needle_forms, question_forms = FORMS[self.ask]
        needle_form = rng.choice(needle_forms)
        question_form = rng.choice(question_forms)
        texts = []
        for name, home in zip(names, cities, strict=True):
            # With ask=city a needle names a landmark of its character's city.
            spot = landmark if home == city else rng.choice([m for m, c in LANDMARKS if c == home])
            texts.append(needle_form.format(name=name, city=home, landmark=spot))
        question = question_form.format(landmark=landmark, city=city)
        needles = [Needle(texts[0], first_depth)]
        needles += [Needle(text, round(rng.random(), 4)) for text in texts[1:]]
        facts = {"landmark": landmark, "city": city, "overlap": overlap(question, texts[0])}
        return question, needles, names, facts, rng.randrange(len(corpus(self.haystack).sentences))

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        first_depth = 0.5 if depth is None else depth
        question, needles, names, facts, start = self._draw(seed, first_depth)
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=first_depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(question=question, answers=(names[0],), answer_prefix=PREFIX, forbidden=tuple(names[1:]))
            ],
            source=body,
            start=start,
            needles=needles,
            metadata={**facts, "ask": self.ask, "distractors": self.distractors},
            evidence=[needles[0].text],
        )

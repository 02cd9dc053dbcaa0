"""Ancestry: parent relations scattered through a haystack; follow the chain up k generations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.tasks.base import Task

# Made-up names: two consonant-vowel-consonant syllables and an ending, so they are at least seven letters,
# read as names, and are unlikely words of any corpus.
_SYLLABLES = (
    "bel dor fen gar hal jor kel lin mar nor pel ros sil tav ven wyn zor cal dun fis hob ket lom mur "
    "nik pim rud sab tor vas wen yar zel bam gil"
).split()
_ENDINGS = "a en is o ith an el ine us ora".split()

MAX_PEOPLE = 600

TEMPLATE = (
    "The text below mentions some family relations among people with made-up names. Read it closely; "
    "afterwards you will be asked about one family line.\n\n{context}\n\n{question}"
)


def _name(rng: random.Random) -> str:
    return (rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + rng.choice(_ENDINGS)).capitalize()


def _names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct names none of which is inside another, so finding the gold name in an answer means
    the answer names that person (which is what lets ``contains_any`` score names)."""
    names: list[str] = []
    while len(names) < count:
        name = _name(rng)
        low = name.lower()
        if not any(low in other.lower() or other.lower() in low for other in names):
            names.append(name)
    return names


def relation(k: int) -> str:
    """parent, grandparent, great-grandparent, great-great-grandparent, then "5-times great-grandparent"."""
    if k == 1:
        return "parent"
    if k <= 4:
        return "great-" * (k - 2) + "grandparent"
    return f"{k - 2}-times great-grandparent"


@dataclass(frozen=True)
class Ancestry(Task):
    """A family line of ``chain_length`` people, written as one "A is the parent of B." sentence per link at
    depths drawn from the seed, among ``distractor_chains`` other lines of the same length with other people;
    the question asks for the ancestor ``k`` generations above the last person of the asked line."""

    name: ClassVar[str] = "ancestry"
    description: ClassVar[str] = (
        "follow scattered parent relations up k generations; return the ancestor's name"
    )
    metric: ClassVar[str] = "contains_any"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("k",)

    chain_length: int = 6
    k: int = 3
    distractor_chains: int = 2
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 32

    @property
    def diffusion(self) -> float:
        # Every link is a marked sentence; other family lines written the same way are what make the right
        # links harder to pick out.
        return round(min(1.0, 0.3 + 0.05 * min(self.distractor_chains, 4)), 2)

    @property
    def scope(self) -> float:
        # The k links between the asked person and the ancestor are all needed.
        return round(min(1.0, 0.05 + 0.05 * self.k), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.check_haystack()
        if self.chain_length < 2:
            raise UsageError(f"{self.label()}: chain_length={self.chain_length} must be at least 2")
        if not 1 <= self.k <= self.chain_length - 1:
            raise UsageError(
                f"{self.label()}: k={self.k} must be between 1 and chain_length - 1 = {self.chain_length - 1}"
            )
        if self.distractor_chains < 0:
            raise UsageError(f"{self.label()}: distractor_chains={self.distractor_chains} must be at least 0")
        people = self.chain_length * (1 + self.distractor_chains)
        if people > MAX_PEOPLE:
            raise UsageError(
                f"{self.label()}: chain_length * (1 + distractor_chains) = {people} people exceeds {MAX_PEOPLE}; "
                "ask for shorter or fewer chains"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        names = _names(rng, self.chain_length * (1 + self.distractor_chains))
        chains = [names[i : i + self.chain_length] for i in range(0, len(names), self.chain_length)]
        # Chain 0 is asked about; each chain runs from the eldest to the youngest.
        needles = [
            Needle(f"{parent} is the parent of {child}.", round(rng.random(), 4))
            for chain in chains
            for parent, child in zip(chain[:-1], chain[1:], strict=True)
        ]
        youngest = chains[0][-1]
        ancestor = chains[0][-1 - self.k]
        generations = f"{self.k} generation{'s' if self.k > 1 else ''}"
        question = (
            f"Using the parent relations stated in the text above, who is the ancestor {generations} above "
            f"{youngest}, that is, {youngest}'s {relation(self.k)}? Answer with the name only."
        )
        body = corpus(self.haystack)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(
                    question=question,
                    answers=(ancestor,),
                    answer_prefix=f"The ancestor {generations} above {youngest} is",
                )
            ],
            source=body,
            start=rng.randrange(len(body.sentences)),
            needles=needles,
            # The k links above the youngest of the asked chain (its first chain_length - 1 needles).
            evidence=[n.text for n in needles[self.chain_length - 1 - self.k : self.chain_length - 1]],
            metadata={
                "k": self.k,
                "chain_length": self.chain_length,
                "distractor_chains": self.distractor_chains,
            },
        )

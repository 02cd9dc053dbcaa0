"""Span finding (after M4LE): many short numbered passages from the built-in essays; name the ids of the passages
that meet a condition, one passage, several, or a condition that needs every passage compared."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, UnitSource, corpus
from longscope.tasks._memo_units import MemoUnits
from longscope.tasks._room import require_room
from longscope.tasks.base import EVERY_UNIT, Task

MAX_SPANS = 8
# Ids are 5 digits: the essay sentence k in its c-th round through the corpus is passage number
# 10000 + (A * (k + c * sentences) + B) mod ID_SPACE; ID_SPACE is a prime, so distinct passages get distinct
# ids. Tying the id to the sentence and round, not to the seed, keeps passage texts the same from sample to
# sample, so their token counts are reused; the seed still decides which passages appear and where.
ID_SPACE = 89_989
A, B = 35_317, 4_219
# The last slots are kept for the global variant's planted passages (drawn among them from the seed), which no
# filler passage reaches.
RESERVED = 1000
PLANTED_BASE = ID_SPACE - RESERVED
# Global variant: filler passages have at most SHORT words and planted ones at least LONG, so the longest
# passages are the planted ones beyond doubt.
SHORT, LONG = 22, 30

TEMPLATE = (
    "Below are many short passages, each starting with its passage number. Read them closely; "
    "afterwards you will be asked which passages meet a condition.\n\n{context}\n\n{question}"
)

WORD = re.compile(r"[a-z]+")


def passage_id(slot: int) -> str:
    return str(10_000 + (A * slot + B) % ID_SPACE)


def passage_words(text: str) -> set[str]:
    """The words of a passage as the condition reads them: maximal runs of letters, lower-cased."""
    return set(WORD.findall(text.lower()))


@functools.cache
def _sentences() -> tuple[str, ...]:
    return tuple(unit.strip() for unit in corpus("essay").sentences)


@functools.cache
def _sentences_by_word() -> dict[str, tuple[int, ...]]:
    """For each word of six letters or more, the essay sentences that use it."""
    found: dict[str, list[int]] = {}
    for i, sentence in enumerate(_sentences()):
        for word in passage_words(sentence):
            if len(word) >= 6:
                found.setdefault(word, []).append(i)
    return {word: tuple(where) for word, where in sorted(found.items())}


def _passages(label: str, allowed: list[int], start: int) -> MemoUnits:
    """The filler: allowed essay sentences in turn from ``start``, each behind its passage number."""
    sentences = _sentences()

    def make(index: int) -> str:
        at = start + index
        k = allowed[at % len(allowed)]
        if index < 0:  # text before the stream only pads the first tokens: a cut number would read as data
            return " " + sentences[k]
        slot = k + (at // len(allowed)) * len(sentences)
        if slot >= PLANTED_BASE:
            raise UsageError(f"{label}: more passages than five-digit passage numbers; use a shorter length")
        return f" Passage {passage_id(slot)}: {sentences[k]}"

    def pieces(index: int) -> list[str]:
        if index < 0:
            return [make(index)]
        # The passage number in groups of at most three digits (tokenizers that split digits one by one or
        # three by three cut it there anyway) and the sentence whole: all of them recur across samples.
        text = make(index)
        number, sentence = text[len(" Passage ") :].split(": ", 1)
        return [" Passage", " ", number[:3], number[3:], ":", " " + sentence]

    return MemoUnits(make, "span_finding", pieces=pieces)


@dataclass(frozen=True)
class SpanFinding(Task):
    """Name every passage that meets the condition, by id.

    Passages are single sentences of the built-in essays, each behind a five-digit passage number, one after
    another in one stream.
    ``variant=single``: exactly one passage uses a given word; ``multi``: exactly ``spans`` passages use it;
    ``global``: which ``spans`` passages have the most words, which takes comparing every passage. The word is
    one the essays use in exactly that many sentences; those sentences are the planted passages and the filler
    never repeats them, so the answer stays the same at every length. In the global variant the filler has
    at most 22 words a passage and the planted passages (runs of consecutive essay sentences) 30 or more.
    Scored by the F1 of the named ids against the gold ids.
    """

    name: ClassVar[str] = "span_finding"
    description: ClassVar[str] = "many numbered passages; name the ids of those that meet a condition"
    metric: ClassVar[str] = "id_set_f1"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("variant", "spans")

    variant: Literal["single", "multi", "global"] = "single"
    spans: int = 3  # passages to find in the multi and global variants (single finds one)
    max_new_tokens: int = 64

    @property
    def found(self) -> int:
        return 1 if self.variant == "single" else self.spans

    @property
    def diffusion(self) -> float:
        # A word match finds single and multi passages; "longest" has no word to match.
        return {"single": 0.2, "multi": 0.3, "global": 0.5}[self.variant]

    @property
    def scope(self) -> float:
        if self.variant == "global":
            return 1.0
        return round(min(1.0, 0.05 * self.found), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.variant not in ("single", "multi", "global"):
            raise UsageError(f"{self.label()}: variant must be one of single, multi, global")
        low = 2 if self.variant == "multi" else 1
        if self.variant != "single" and not low <= self.spans <= MAX_SPANS:
            raise UsageError(
                f"{self.label()}: spans={self.spans} must be between {low} and {MAX_SPANS} for variant={self.variant}"
            )
        question, prefix, needles, _, _ = self._draw(0)  # the planted passages are the same size at any seed
        require_room(
            backend,
            label=self.label(),
            length=length,
            max_new_tokens=self.max_new_tokens,
            template=TEMPLATE,
            question=question,
            prefix=prefix,
            texts=[n.text for n in needles],
            what=f"{len(needles)} planted passages",
            fix="lower spans",
        )

    def _draw(self, seed: int) -> tuple[str, str, list[Needle], list[str], UnitSource]:
        """Question, answer prefix, planted passages, their ids and the filler: from the seed alone."""
        rng = self.rng(seed)
        sentences = _sentences()
        if self.variant == "global":
            planted = []
            while len(planted) < self.found:
                at, text = rng.randrange(len(sentences)), ""
                while len(text.split()) < LONG:
                    text = (text + " " + sentences[at % len(sentences)]).strip()
                    at += 1
                if text not in planted:
                    planted.append(text)
            allowed = [k for k, s in enumerate(sentences) if len(s.split()) <= SHORT]
            if self.found == 1:
                question = "Which passage has the most words? Answer with its passage number only."
            else:
                question = (
                    f"Which are the {self.found} passages that have the most words? Answer with the passage "
                    "numbers only."
                )
        else:
            words = [w for w, where in _sentences_by_word().items() if len(where) == self.found]
            word = rng.choice(words)
            planted = [sentences[i] for i in _sentences_by_word()[word]]
            allowed = [k for k, s in enumerate(sentences) if word not in passage_words(s)]
            if self.found == 1:
                question = f'Which passage uses the word "{word}"? Answer with its passage number only.'
            else:
                question = f'Which passages use the word "{word}"? Answer with the passage numbers only.'
        if self.variant == "global":
            ids = [passage_id(PLANTED_BASE + j) for j in rng.sample(range(RESERVED), len(planted))]
        else:  # the planted sentences never appear in the filler, so their own slots are free
            rounds = rng.sample(range(PLANTED_BASE // len(sentences)), len(planted))
            ids = [
                passage_id(sentences.index(t) + r * len(sentences))
                for t, r in zip(planted, rounds, strict=True)
            ]
        needles = [
            Needle(f"Passage {i}: {text}", round(rng.random(), 4))
            for i, text in zip(ids, planted, strict=True)
        ]
        return (
            question,
            "The passage numbers are:",
            needles,
            ids,
            _passages(self.label(), allowed, rng.randrange(len(allowed))),
        )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        question, prefix, needles, ids, filler = self._draw(seed)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=question, answers=tuple(ids), answer_prefix=prefix)],
            source=filler,
            needles=needles,
            metadata={"variant": self.variant, "spans": self.found},
            # Finding the longest passages means comparing every one; the other variants need the planted ones.
            evidence=EVERY_UNIT if self.variant == "global" else [n.text for n in needles],
        )

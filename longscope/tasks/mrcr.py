"""Multi-round co-reference (after OpenAI's MRCR): a long conversation repeats one request several times; the
model must reproduce the reply to the k-th of them, behind a random prefix."""

from __future__ import annotations

import functools
import random
import string
from dataclasses import dataclass
from typing import ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle
from longscope.tasks._conversation import ASKED_TOPICS, FILLER_TOPICS, FORMS, reply, request
from longscope.tasks._memo_units import MemoUnits
from longscope.tasks._pieces import split_at_spaces
from longscope.tasks._room import require_room
from longscope.tasks.base import Task

MAX_ROUNDS = 16
MAX_DECOYS = 10
PREFIX_CHARS = 10
# The filler conversation repeats after this many exchanges (about 250k tokens): every sample reads the same
# exchanges from its own starting point, so their token counts are reused from sample to sample.
FILLER_CYCLE = 4096

TEMPLATE = (
    "Below is a long conversation between a user and an assistant. Read it closely; afterwards you will be "
    "asked to repeat one of the assistant's replies.\n\n{context}\n\n{question}"
)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def exchange(form: str, topic: str, text: str) -> str:
    return f"\n\nUser: {request(form, topic)}\nAssistant: {text}"


def _filler(index: int) -> str:
    """Exchange ``index`` of one endless conversation about the filler topics, the same for every sample (the
    seed picks where a sample starts reading it)."""
    return _filler_at(index % FILLER_CYCLE)


@functools.cache  # drawing an exchange costs more than looking it up, and there are only FILLER_CYCLE
def _filler_at(index: int) -> str:
    rng = random.Random(f"mrcr-filler-{index}")
    form, topic = rng.choice(FORMS), rng.choice(FILLER_TOPICS)
    return exchange(form, topic, reply(rng, form, topic))


def _filler_pieces(index: int) -> list[str]:
    """Exchange ``index`` cut before its spaces: its words recur, so a sample reading exchanges no sample has
    read yet counts them from cached word counts."""
    return _filler_pieces_at(index % FILLER_CYCLE)


@functools.cache
def _filler_pieces_at(index: int) -> list[str]:
    return split_at_spaces(_filler_at(index))


@dataclass(frozen=True)
class Mrcr(Task):
    """Reproduce the assistant's reply to the k-th of ``rounds`` identical requests.

    The conversation is a transcript of user requests ("write a poem about otters") and made-up replies.
    One request, about a topic the rest of the conversation never uses, is made ``rounds`` times, each
    time with a different reply of the same form; ``decoys`` more requests ask for other forms about the same
    topic, and the filler asks for the same form about other topics, so only the exact request and its order
    tell the asked reply apart. The question names a random ten-character prefix, k (drawn from the seed)
    and the request; the gold is the prefix followed by the k-th reply. Scored as MRCR scores: no prefix,
    nothing; otherwise the difflib sequence ratio.
    """

    name: ClassVar[str] = "mrcr"
    description: ClassVar[str] = "a conversation repeats one request; reproduce the reply to its k-th time"
    metric: ClassVar[str] = "mrcr_similarity"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("rounds", "occurrence")
    departures: ClassVar[tuple[str, ...]] = (
        "The conversation is one user message holding a transcript (User: ... / Assistant: ...) after a "
        "one-sentence introduction, so that every backend and prompt-level method reads it as a context; "
        "MRCR sends it as real chat turns.",
        "Replies are made up from templates and word lists (three or four lines each), not written by a "
        "model, and requests are drawn from five forms and a few dozen topics; MRCR's needle counts are "
        "2, 4 and 8, here any rounds from 2 to 16.",
        "Whitespace around the model's reply is stripped before the prefix check.",
    )

    rounds: int = 2
    decoys: int = 2
    max_new_tokens: int = 256

    @property
    def diffusion(self) -> float:
        # Identical requests and same-topic or same-form look-alikes: only the order picks the right reply.
        return round(min(1.0, 0.5 + 0.05 * min(self.rounds, 6) + 0.05 * min(self.decoys, 2)), 2)

    @property
    def scope(self) -> float:
        # Every earlier repeat must be counted, and the reply copied whole.
        return round(min(1.0, 0.1 + 0.05 * self.rounds), 2)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 2 <= self.rounds <= MAX_ROUNDS:
            raise UsageError(
                f"{self.label()}: rounds={self.rounds} must be between 2 and {MAX_ROUNDS}; co-reference needs "
                "a request made at least twice"
            )
        if not 0 <= self.decoys <= MAX_DECOYS:
            raise UsageError(f"{self.label()}: decoys={self.decoys} must be between 0 and {MAX_DECOYS}")
        question, needles, gold, _, _ = self._draw(0)
        self._check_budget(backend, gold)
        require_room(
            backend,
            label=self.label(),
            length=length,
            max_new_tokens=self.max_new_tokens,
            template=TEMPLATE,
            question=question,
            prefix="",
            texts=[n.text for n in needles],
            what=f"{len(needles)} exchanges (rounds={self.rounds}, decoys={self.decoys})",
            fix="lower rounds or decoys",
        )

    def _check_budget(self, backend: Backend, gold: str) -> None:
        needed = backend.count_tokens(gold)
        if needed > self.max_new_tokens:
            raise UsageError(
                f"{self.label()}: the reply to reproduce takes {needed} tokens but max_new_tokens="
                f"{self.max_new_tokens}; raise max_new_tokens"
            )

    def _draw(self, seed: int) -> tuple[str, list[Needle], str, dict, int]:
        """Question, exchange needles (the repeats first, in order), gold, facts and where the filler starts."""
        rng = self.rng(seed)
        form, topic = rng.choice(FORMS), rng.choice(ASKED_TOPICS)
        occurrence = rng.randint(1, self.rounds)
        prefix = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(PREFIX_CHARS))
        replies: list[str] = []
        while len(replies) < self.rounds:  # distinct, so the k-th reply is one text
            text = reply(rng, form, topic)
            if text not in replies:
                replies.append(text)
        # Sorted depths keep the repeats in order; needles at one boundary keep their list order too.
        depths = sorted(round(rng.random(), 4) for _ in replies)
        needles = [Needle(exchange(form, topic, text), d) for text, d in zip(replies, depths, strict=True)]
        others = [f for f in FORMS if f != form]
        for _ in range(self.decoys):
            other = rng.choice(others)
            needles.append(Needle(exchange(other, topic, reply(rng, other, topic)), round(rng.random(), 4)))
        question = (
            f"Prepend {prefix} to the {ordinal(occurrence)} (1 indexed) {form} about {topic}. Do not include "
            "any other text in your response."
        )
        facts = {
            "rounds": self.rounds,
            "occurrence": occurrence,
            "random_prefix": prefix,
            "decoys": self.decoys,
        }
        return question, needles, prefix + replies[occurrence - 1], facts, rng.randrange(FILLER_CYCLE)

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        question, needles, gold, facts, start = self._draw(seed)
        self._check_budget(backend, gold)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=question, answers=(gold,))],
            source=MemoUnits(_filler, "mrcr", pieces=_filler_pieces),
            start=start,
            needles=needles,
            metadata=facts,
            # The repeats up to the asked one: each earlier one must be seen to count to k.
            evidence=[n.text for n in needles[: facts["occurrence"]]],
        )

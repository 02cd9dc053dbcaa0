"""What the retrieval methods share: chunk the context, pick chunks for a query, send them, and measure
whether the picked chunks held the gold evidence."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.methods.prompt._chunks import Chunk, chunk_context
from longscope.retrieval import ranking, scores

ORDERS = ("original", "score")
# Between sent chunks: a blank line keeps two chunks' sentences from reading as one paragraph.
SEPARATOR = "\n\n"


# Sentence token counts per tokenizer, by text: haystacks are cut from a few corpora, so a sample's sentences
# mostly recur in the next sample and at the next length, and each is tokenised once per process.
_SENTENCE_COUNTS: dict[str, dict[str, int]] = {}
_SENTENCES_HELD = 200_000
# The chunks of the last few (tokenizer, context, size, overlap): ``check_sample`` cuts them up front and
# ``answer`` reads them again for every turn, so one sample is chunked once.
_CHUNKS: OrderedDict[tuple[str, str, int, int], list[Chunk]] = OrderedDict()
_CHUNKS_HELD = 8


def sentence_counter(backend: Backend) -> Callable[[list[str]], list[int]]:
    """``backend.count_tokens_batch`` with a per-tokenizer memo: one batch call for the sentences not yet seen."""
    memo = _SENTENCE_COUNTS.setdefault(backend.tokenizer_fingerprint(), {})

    def count(sentences: list[str]) -> list[int]:
        missing = list(dict.fromkeys(s for s in sentences if s not in memo))
        if len(memo) + len(missing) > _SENTENCES_HELD:
            memo.clear()
        if missing:
            memo.update(zip(missing, backend.count_tokens_batch(missing), strict=True))
        return [memo[s] for s in sentences]

    return count


def chunks_of(backend: Backend, text: str, size: int, overlap: int) -> list[Chunk]:
    """The context's chunks, cut once per (tokenizer, context, size, overlap) while they are among the last
    few asked for."""
    key = (backend.tokenizer_fingerprint(), text, size, overlap)
    if key in _CHUNKS:
        _CHUNKS.move_to_end(key)
        return _CHUNKS[key]
    chunks = chunk_context(text, sentence_counter(backend), size, overlap)
    _CHUNKS[key] = chunks
    while len(_CHUNKS) > _CHUNKS_HELD:
        _CHUNKS.popitem(last=False)
    return chunks


def needs_context(method: PromptMethod, sample: Sample) -> None:
    """One line, before anything runs, for a method that reads a context on a sample that has none."""
    if not sample.context.strip():
        raise UsageError(
            f"method {method.label()} reads the context, and {sample.id} ({sample.task}) has none; "
            "run it on a task with a context, or use no-context"
        )


def evidence_recall(sample: Sample, turn: int, sent: list[str]) -> float | None:
    """The share of the turn's gold answers that the sent text contains, counted only where the answers sit
    literally in the context of a task that placed them there (a needle task records ``needle_depths``);
    elsewhere a literal match says nothing about evidence, so there is no figure."""
    if "needle_depths" not in sample.metadata:
        return None
    gold = [a for a in sample.turns[turn].answers if a and a in sample.context]
    if not gold:
        return None
    return sum(any(a in text for text in sent) for a in gold) / len(gold)


def with_recall(generation: Generation, recall: float | None) -> Generation:
    return dataclasses.replace(generation, retrieval_recall=recall)


@dataclass(frozen=True)
class Retrieval(PromptMethod):
    """Retrieve-then-read: the context cut into chunks of whole sentences (``chunk`` tokens, ``overlap``
    carried into the next), the ``k`` best for the question sent, in the context's order or best first
    (``order``). A budget (or ratio) also caps the tokens sent: chunks are taken best first until it is full.
    When a sample has fewer than ``k`` chunks, all are sent (the plan refuses that up front once it calls
    ``check_sample``)."""

    retriever: ClassVar[str] = ""
    k: int = 8
    chunk: int = 256
    overlap: int = 32
    order: str = "original"

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"method {self.name}"
        if self.k < 1:
            raise UsageError(f"{where}: k must be at least 1 chunk (got {self.k})")
        if self.chunk < 1:
            raise UsageError(f"{where}: chunk must be at least 1 token (got {self.chunk})")
        if not 0 <= self.overlap < self.chunk:
            raise UsageError(
                f"{where}: overlap must be in [0, chunk={self.chunk}) tokens (got {self.overlap})"
            )
        if self.order not in ORDERS:
            raise UsageError(f"{where}: unknown order {self.order!r}; choose one of {', '.join(ORDERS)}")
        if self.budget is not None and self.chunk > self.budget:
            raise UsageError(
                f"{where}: chunk of {self.chunk} tokens is larger than the budget of {self.budget}; "
                "give a smaller chunk or a larger budget"
            )

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        """Up front, per sample: a context to read, and at least ``k`` chunks in it."""
        needs_context(self, sample)
        if self.budget is not None:
            self.check_context(len(backend.encode(sample.context)), sample.id)
        found = len(chunks_of(backend, sample.context, self.chunk, self.overlap))
        if self.k > found:
            raise UsageError(
                f"method {self.label()}: k={self.k} is more than the {found} chunks of {self.chunk} tokens "
                f"in {sample.id}; use k up to {found}, a smaller chunk or a longer length"
            )

    def ranker(self) -> str:
        return self.retriever

    def pick(
        self, chunks: list[Chunk], query: str, context_tokens: int, taken: frozenset[int] = frozenset()
    ) -> list[Chunk]:
        """The chunks to send for ``query``: the best ``k`` not yet ``taken`` within the token cap, in the
        chosen order."""
        best = ranking(scores(self.ranker(), [c.text for c in chunks], query))
        cap = None if self.removes_nothing else self.kept(context_tokens)
        picked, spent = [], 0
        for index in [i for i in best if i not in taken][: self.k]:
            if cap is not None and spent + chunks[index].tokens > cap:
                break
            picked.append(chunks[index])
            spent += chunks[index].tokens
        return picked if self.order == "score" else sorted(picked, key=lambda c: c.index)

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        context = request.context or ""
        chunks = chunks_of(backend, context, self.chunk, self.overlap)
        # The context's length matters only to a budget or ratio cap; without one it is not worth a full
        # tokenisation per turn.
        context_tokens = 0 if self.removes_nothing else len(backend.encode(context))
        picked = self.pick(chunks, sample.turns[turn].question, context_tokens)
        sent = SEPARATOR.join(c.text.strip() for c in picked)
        generation = combined([backend.generate(request.with_context(sent) if context else request)])
        return with_recall(generation, evidence_recall(sample, turn, [c.text for c in picked]))

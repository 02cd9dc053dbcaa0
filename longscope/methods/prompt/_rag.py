"""What the retrieval methods share: chunk the context, pick chunks for a query, send them, and measure
whether the picked chunks held the gold evidence."""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.methods.prompt._chunks import Chunk, chunk_context
from longscope.retrieval import ranking, scores

ORDERS = ("original", "score")
# What a chunk's size and overlap count: the model's tokens, or words as LongBench's retrieval scripts count
# them (its published chunk sizes, 200 and 500, are in words).
UNITS = ("tokens", "words")
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


# LongBench's word: a run of letters, digits or underscores, except that every CJK ideograph (U+4E00-U+9FA5) is a
# word on its own, so Chinese text is counted by characters as LongBench counts it.
_WORD = re.compile(r"[\u4e00-\u9fa5]|[^\W\u4e00-\u9fa5]+")


def longbench_words(text: str) -> int:
    """The words in ``text`` as LongBench's ``splitter.get_word_len`` counts them."""
    return len(_WORD.findall(text.lower()))


def count_words(sentences: list[str]) -> list[int]:
    return [longbench_words(s) for s in sentences]


def chunks_of(backend: Backend, text: str, size: int, overlap: int, unit: str = "tokens") -> list[Chunk]:
    """The context's chunks, cut once per (tokenizer, context, size, overlap, unit) while they are among the
    last few asked for. With ``unit="words"`` size and overlap (and each chunk's ``tokens``) count words."""
    key = (backend.tokenizer_fingerprint() if unit == "tokens" else unit, text, size, overlap)
    if key in _CHUNKS:
        _CHUNKS.move_to_end(key)
        return _CHUNKS[key]
    chunks = chunk_context(
        text, sentence_counter(backend) if unit == "tokens" else count_words, size, overlap
    )
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
    """The share of the turn's evidence (``Sample.evidence``, or the turn's own ``turn_evidence``) that the sent
    chunks cover, each piece counted when every character of it lies in a sent chunk (a passage split across
    two chunks counts when both were sent). Samples without recorded evidence fall back to the gold answers
    that a needle task (one recording ``needle_depths``) placed literally in the context; elsewhere a literal
    match says nothing about evidence, so there is no figure."""
    turns = sample.metadata.get("turn_evidence") or []
    own = turns[turn] if turn < len(turns) and turns[turn] else sample.evidence
    pieces = [p for p in own if p and p in sample.context]
    if pieces:
        covered = _merged(
            [(start, start + len(text)) for text in sent if (start := sample.context.find(text)) >= 0]
        )
        inside = [
            _within(covered, start, start + len(p)) for p in pieces if (start := sample.context.find(p)) >= 0
        ]
        return sum(inside) / len(inside)
    if "needle_depths" not in sample.metadata:
        return None
    gold = [a for a in sample.turns[turn].answers if a and a in sample.context]
    if not gold:
        return None
    return sum(any(a in text for text in sent) for a in gold) / len(gold)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans joined where they touch or overlap, in order."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _within(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(low <= start and end <= high for low, high in spans)


def with_recall(generation: Generation, recall: float | None) -> Generation:
    return dataclasses.replace(generation, retrieval_recall=recall)


@dataclass(frozen=True)
class Retrieval(PromptMethod):
    """Retrieve-then-read: the context cut into chunks of whole sentences (``chunk`` tokens, ``overlap``
    carried into the next; words as LongBench counts them with ``unit=words``), the ``k`` best for the question
    sent, in the context's order or best first (``order``). A budget (or ratio) also caps the tokens sent:
    chunks are taken best first until it is full. When a sample has fewer than ``k`` chunks, all are sent (the
    plan refuses that up front once it calls ``check_sample``)."""

    retriever: ClassVar[str] = ""
    k: int = 8
    chunk: int = 256
    overlap: int = 32
    order: str = "original"
    unit: str = "tokens"

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"method {self.name}"
        if self.k < 1:
            raise UsageError(f"{where}: k must be at least 1 chunk (got {self.k})")
        if self.chunk < 1:
            raise UsageError(f"{where}: chunk must be at least 1 token (got {self.chunk})")
        if not 0 <= self.overlap < self.chunk:
            raise UsageError(
                f"{where}: overlap must be in [0, chunk={self.chunk}) {self.unit} (got {self.overlap})"
            )
        if self.order not in ORDERS:
            raise UsageError(f"{where}: unknown order {self.order!r}; choose one of {', '.join(ORDERS)}")
        if self.unit not in UNITS:
            raise UsageError(f"{where}: unknown unit {self.unit!r}; choose one of {', '.join(UNITS)}")
        if self.unit == "words" and not self.removes_nothing:
            raise UsageError(
                f"{where}: a budget or ratio counts tokens and these chunks count words; give k alone, or "
                "unit=tokens"
            )
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
        found = len(self.chunks(backend, sample.context))
        if self.k > found:
            raise UsageError(
                f"method {self.label()}: k={self.k} is more than the {found} chunks of {self.chunk} {self.unit} "
                f"in {sample.id}; use k up to {found}, a smaller chunk or a longer length"
            )

    def ranker(self) -> str:
        return self.retriever

    def chunks(self, backend: Backend, context: str) -> list[Chunk]:
        return chunks_of(backend, context, self.chunk, self.overlap, self.unit)

    def compose(self, picked: list[Chunk]) -> str:
        """The text sent in place of the context: the picked chunks, a blank line between two."""
        return SEPARATOR.join(c.text.strip() for c in picked)

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
        chunks = self.chunks(backend, context)
        # The context's length matters only to a budget or ratio cap; without one it is not worth a full
        # tokenisation per turn.
        context_tokens = 0 if self.removes_nothing else len(backend.encode(context))
        picked = self.pick(chunks, sample.turns[turn].question, context_tokens)
        sent = self.compose(picked)
        generation = combined([backend.generate(request.with_context(sent) if context else request)])
        return with_recall(generation, evidence_recall(sample, turn, [c.text for c in picked]))

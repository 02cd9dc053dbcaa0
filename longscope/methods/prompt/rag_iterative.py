"""``rag-iterative``: retrieve, let the model write the next search query, retrieve again, then answer."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import combined
from longscope.methods.prompt._rag import SEPARATOR, Retrieval, evidence_recall, with_recall
from longscope.retrieval import RETRIEVERS

SUB_QUERY = (
    "Passages found so far:\n\n{passages}\n\nQuestion: {question}\n\n"
    "Write one short search query for what the passages still lack to answer the question. "
    "Reply with the query only."
)


@dataclass(frozen=True)
class RagIterative(Retrieval):
    """Up to ``rounds`` retrievals of ``k`` new chunks each: the first for the question, each later one for a
    query the model writes (at most ``query_tokens`` tokens) from the passages found so far; the answer is
    read from every chunk found, in the context's order (or in the order found, ``order=score``). The row's calls and tokens count the query-writing
    calls too, so quality can be read against what the rounds cost. ``search`` is ``bm25`` or ``dense``."""

    name = "rag-iterative"
    description = "retrieve, let the model write a sub-query, retrieve again (rounds), then answer"
    k: int = 4
    rounds: int = 3
    search: str = "bm25"
    query_tokens: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError(f"method {self.name}: what it sends is set by k and rounds; it takes no budget")
        if self.rounds < 1:
            raise UsageError(f"method {self.name}: rounds must be at least 1 (got {self.rounds})")
        if self.search not in RETRIEVERS:
            raise UsageError(
                f"method {self.name}: unknown search {self.search!r}; choose one of {', '.join(RETRIEVERS)}"
            )
        if self.query_tokens < 1:
            raise UsageError(f"method {self.name}: query_tokens must be at least 1 (got {self.query_tokens})")
        if self.search == "dense":
            from longscope.retrieval import check_embedder

            check_embedder()

    def ranker(self) -> str:
        return self.search

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        context = request.context or ""
        if not context:
            return combined([backend.generate(request)])
        question = sample.turns[turn].question
        chunks = self.chunks(backend, context)
        # A budget or ratio caps each round's picks by the context's length; without one, no tokenisation.
        context_tokens = 0 if self.removes_nothing else len(backend.encode(context))
        found = self.pick(chunks, question, context_tokens)
        calls: list[Generation] = []
        for _ in range(self.rounds - 1):
            passages = SEPARATOR.join(c.text.strip() for c in sorted(found, key=lambda c: c.index))
            ask = GenerationRequest(
                messages=[
                    {"role": "user", "content": SUB_QUERY.format(passages=passages, question=question)}
                ],
                max_new_tokens=self.query_tokens,
                chat=request.chat,
                seed=request.seed,
            )
            written = backend.generate(ask)
            calls.append(written)
            more = self.pick(chunks, written.text.strip(), context_tokens, frozenset(c.index for c in found))
            if not written.text.strip() or not more:
                break  # nothing to search for, or nothing left to find: further rounds would repeat this one
            found += more
        if self.order == "original":
            found.sort(key=lambda c: c.index)
        sent = SEPARATOR.join(c.text.strip() for c in found)
        calls.append(backend.generate(request.with_context(sent)))
        return with_recall(combined(calls), evidence_recall(sample, turn, [c.text for c in found]))

"""``rag-bm25``: the context's chunks ranked by BM25 (bm25s) against the question, the top k sent."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.methods.prompt._rag import Retrieval


@dataclass(frozen=True)
class RagBM25(Retrieval):
    name = "rag-bm25"
    description = "the top-k sentence-bounded chunks of the context by BM25 against the question"
    retriever = "bm25"

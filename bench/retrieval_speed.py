"""Retrieval speed on one 128k-token context: chunking, BM25 indexing and search (target ≤ 0.5 s), and dense
embedding with the bundled MiniLM (measured, no target).

Usage: .venv/bin/python bench/retrieval_speed.py   (writes bench/results/retrieval_speed.json)
Tokens are SmolLM2's (the bundled model, converted on first use). Each stage is timed as the best of
``REPEATS`` runs, so a neighbour's burst on a shared machine does not count against it; the dense figure is
one pass after the model is loaded (its load time is given apart).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKENS = 128 * 1024
CHUNK, OVERLAP, K = 256, 32, 8
REPEATS = 3
QUESTION = "What is the secret number for brave-otter mentioned in the essays?"


def haystack(count) -> str:
    """Essay sentences repeated until the text holds at least TOKENS tokens."""
    from longscope.haystack import corpus

    units = corpus("essay").sentences
    pieces, total = [], 0
    while total < TOKENS:
        for unit, n in zip(units, count(list(units)), strict=True):
            pieces.append(unit)
            total += n
            if total >= TOKENS:
                break
    return "".join(pieces)


def best(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoTokenizer

    from longscope.backends.smollm2 import converted_dir, load
    from longscope.methods.prompt._chunks import chunk_context
    from longscope.retrieval import bm25_scores, dense_scores, embedder, ranking

    if not (converted_dir() / "tokenizer.json").is_file():
        load()
    tokenizer = AutoTokenizer.from_pretrained(str(converted_dir()))

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    text = haystack(count)
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    chunk_s, chunks = best(lambda: chunk_context(text, count, CHUNK, OVERLAP))
    units = [c.text for c in chunks]
    bm25_s, scores = best(lambda: bm25_scores(units, QUESTION))
    rank_s, _ = best(lambda: ranking(scores)[:K])
    load_start = time.perf_counter()
    embedder()
    load_s = time.perf_counter() - load_start
    dense_s, _ = best(lambda: dense_scores(units, QUESTION), repeats=1)
    total = chunk_s + bm25_s + rank_s
    result = {
        "context_tokens": tokens,
        "context_chars": len(text),
        "chunk_tokens": CHUNK,
        "overlap_tokens": OVERLAP,
        "chunks": len(chunks),
        "k": K,
        "chunking_s": round(chunk_s, 4),
        "bm25_index_and_search_s": round(bm25_s, 4),
        "top_k_s": round(rank_s, 5),
        "bm25_total_s": round(total, 4),
        "bm25_target_s": 0.5,
        "bm25_meets_target": total <= 0.5,
        "dense_model_load_s": round(load_s, 2),
        "dense_embed_and_search_s": round(dense_s, 2),
        "dense_chunks_per_s": round(len(chunks) / dense_s, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible (shared)",
    }
    out = HERE / "results" / "retrieval_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

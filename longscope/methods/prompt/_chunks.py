"""Cutting a context into chunks of whole sentences, sized and overlapped in the model's tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from longscope.haystack import split_sentences


@dataclass(frozen=True)
class Chunk:
    """Sentences ``first`` to ``last`` (exclusive) of the context; ``tokens`` is the sum of their counts."""

    index: int
    text: str
    first: int
    last: int
    tokens: int


def chunk_context(text: str, count: Callable[[list[str]], list[int]], size: int, overlap: int) -> list[Chunk]:
    """Chunks of at most ``size`` tokens, each cut at a sentence boundary, each starting with the longest run
    of the previous chunk's closing sentences that holds at most ``overlap`` tokens.

    ``count`` gives the token count of each sentence (a backend's ``count_tokens_batch``). Sentences keep
    their leading whitespace (``split_sentences``), so a chunk's text is the context's own characters and a
    chunk's count matches the count of the sentences in place. A sentence longer than ``size`` on its own
    becomes a chunk by itself rather than being cut mid-sentence.
    """
    sentences = split_sentences(text)
    if not sentences:
        return []
    counts = count(sentences)
    chunks: list[Chunk] = []
    first = 0
    while True:
        last, total = first, 0
        while last < len(sentences) and (last == first or total + counts[last] <= size):
            total += counts[last]
            last += 1
        chunks.append(Chunk(len(chunks), "".join(sentences[first:last]), first, last, total))
        if last == len(sentences):
            return chunks
        # Step back over closing sentences while they fit the overlap, but always move forward by one at
        # least, or a long sentence and a generous overlap would repeat the same chunk forever.
        start, carried = last, 0
        while start - 1 > first and carried + counts[start - 1] <= overlap:
            start -= 1
            carried += counts[start]
        first = start

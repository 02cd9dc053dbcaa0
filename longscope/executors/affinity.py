"""Cache-aware dispatch: which queued item a worker with room takes next, so that prompts sharing a long prefix
go to the worker that has just read that prefix.

Serving engines keep the prompt they last read (llama.cpp) or a prefix tree of many (vLLM, SGLang) and skip
the shared part of the next prompt. A plan holds many such pairs: the depths of one haystack share everything
before the needle, a document's questions share the document. The local executor answers them one after
another and gets that reuse for free; a dispatcher that deals items round-robin splits the pairs over
endpoints and makes every server read every prefix again (measured: a quarter of the prefill of the deeper
needles of a NIAH plan, ~8 % of the whole, lost on two llama.cpp servers). The rule here keeps the pairs
together without ever leaving a worker idle while items wait.
"""

from __future__ import annotations

from collections.abc import Sequence

# How far down the queue a worker looks for an item of its own; the queue's order is otherwise kept.
LOOKAHEAD = 8
# A shared prefix shorter than this (in characters, ~250 tokens) saves too little to reorder the plan for.
MIN_SHARED_CHARS = 1024


def shared_prefix(first: str, second: str) -> int:
    """Length of the common prefix of two strings, by bisection over slice comparisons (C speed for long
    prompts, where a per-character loop in Python would cost milliseconds)."""
    low, high = 0, min(len(first), len(second))
    if first[:high] == second[:high]:
        return high
    while low < high:  # invariant: the first ``low`` characters agree, the first ``high + 1`` do not
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def affinity(prompt: str, recent: Sequence[str], at_least: int = 0) -> int:
    """The longest prefix ``prompt`` shares with a prompt a worker read recently; 0 for prompts sharing fewer
    than ``at_least`` characters, told by one short comparison (128k prompts are half a megabyte, and most
    pairs a dispatch looks at share no long prefix)."""
    head = prompt[:at_least]
    return max(
        (shared_prefix(prompt, seen) for seen in recent if len(head) == at_least and seen[:at_least] == head),
        default=0,
    )


def pick(
    prompts: Sequence[str],
    mine: Sequence[str],
    others: Sequence[Sequence[str]],
    *,
    min_shared: int = MIN_SHARED_CHARS,
) -> int:
    """Index, among the first queued ``prompts``, of the item a worker with room takes. ``mine``: the prompts
    it read recently; ``others``: those of every other worker. In order of preference: the item sharing the
    longest prefix (at least ``min_shared``) with its own recent prompts; else the first item no other worker
    shares such a prefix with (that one waits for its worker, which will soon have room); else the first."""
    best, best_shared = None, min_shared - 1
    for index, prompt in enumerate(prompts):
        shared = affinity(prompt, mine, min_shared)
        if shared > best_shared:
            best, best_shared = index, shared
    if best is not None:
        return best
    for index, prompt in enumerate(prompts):
        if all(affinity(prompt, recent, min_shared) < min_shared for recent in others):
            return index
    return 0


def prompt_of(work) -> str:
    """The text an item's first request sends (its messages joined), what a server's prefix cache sees."""
    request = work.item.request(work.sample, 0)
    return "\n".join(message["content"] for message in request.messages)

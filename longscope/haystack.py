"""Haystacks of an exact token length: built-in corpora, sentence splitting, depth placement and fitting."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from longscope.core import Backend, UsageError

# ---------------------------------------------------------------------------------------------------------
# Sentence splitting

# Words that end in a period without ending a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al",
    "no", "vol", "fig", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "approx", "dept", "est",
}  # fmt: skip

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*(?=\s)")


def split_sentences(text: str) -> list[str]:
    """Split text into sentence units that keep their *leading* whitespace, so ``"".join`` gives the text back.

    Leading rather than trailing whitespace matters for token counts: byte-level BPE tokenisers attach a
    space to the following word, so a unit that starts with its space tokenises the same alone as in place.
    """
    units: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        word = text[start:end].split()[-1] if text[start:end].split() else ""
        stem = word.rstrip(".!?\"')]").lower()
        single_period = match.group().startswith(".") and len(match.group().rstrip("\"')]")) == 1
        # "Dr." or "e.g." or a single initial ("J.") is not the end of a sentence.
        if single_period and (stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha())):
            continue
        rest = text[end:]
        nxt = rest.lstrip()
        # A sentence ends before a capital, a digit, a quote or the end of the text; not before "and so on".
        if nxt and not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'([" or rest.startswith("\n\n")):
            continue
        units.append(text[start:end])
        start = end
    if text[start:].strip():
        units.append(text[start:])
    return units


# ---------------------------------------------------------------------------------------------------------
# Corpora


@dataclass(frozen=True)
class Corpus:
    """Sentence units that a haystack streams through, cycling when a context needs more than there is."""

    name: str
    units: tuple[str, ...]
    description: str


_NOISE_SENTENCES = (
    "The river runs wide.",
    "The hills stay quiet.",
    "The lamps are lit at dusk.",
    "Rain falls on the road.",
    "Morning comes round once more.",
)


@functools.cache
def corpus(name: str) -> Corpus:
    """A built-in corpus by name: ``noise`` (RULER-style repetition) or ``essay`` (natural prose)."""
    if name == "noise":
        return Corpus(
            "noise",
            tuple(" " + s for s in _NOISE_SENTENCES),
            "five plain sentences repeated: nothing to confuse with a needle",
        )
    if name == "essay":
        text = resources.files("longscope.corpora").joinpath("essays.txt").read_text(encoding="utf-8")
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        # Titles are short lines without final punctuation; they would read as stray fragments.
        paragraphs = [p for p in paragraphs if p[-1] in ".!?\"'"]
        units: list[str] = []
        for paragraph in paragraphs:
            sentences = split_sentences(" ".join(paragraph.split()))
            units.append("\n\n" + sentences[0])
            units.extend(" " + s.strip() for s in sentences[1:])
        return Corpus("essay", tuple(units), "original essays written for longscope (Apache-2.0)")
    raise UsageError(f"unknown haystack corpus {name!r}; known corpora: essay, noise")


CORPORA = ("essay", "noise")


# ---------------------------------------------------------------------------------------------------------
# Exact-length fitting


@dataclass(frozen=True)
class Needle:
    """A sentence to hide in the haystack at a relative depth (0 = start of the context, 1 = its end)."""

    text: str
    depth: float


@dataclass(frozen=True)
class FittedContext:
    context: str
    prompt_tokens: int
    needle_depths: tuple[float, ...]  # realised depth of each needle, as a share of the context's tokens
    haystack_units: int


class _UnitTokens:
    """Token counts of a corpus's units in one tokenizer, computed once and shared by every sample."""

    _cache: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def counts(cls, backend: Backend, body: Corpus) -> np.ndarray:
        key = (backend.tokenizer_fingerprint(), body.name)
        if key not in cls._cache:
            _check_clean(body.units, backend)
            cls._cache[key] = np.array([backend.count_tokens(u) for u in body.units], dtype=np.int64)
        return cls._cache[key]


def _check_clean(texts: Sequence[str], backend: Backend) -> None:
    specials = [s for s in backend.special_token_strings() if s]
    for text in texts:
        for special in specials:
            if special in text:
                raise UsageError(
                    f"haystack text contains the special token {special!r}; remove it from the corpus"
                )


def fit_context(
    backend: Backend,
    count_prompt: Callable[[str], int],
    body: Corpus,
    needles: Sequence[Needle],
    target_prompt_tokens: int,
    start: int,
) -> FittedContext:
    """Fill a context so that the whole prompt counts exactly ``target_prompt_tokens`` in the model's tokenizer.

    ``count_prompt(context)`` renders the full request (template, instructions, question, answer prefix) and
    counts it. Whole sentences are chosen from per-unit counts (computed once per corpus), checked against the
    real count, and corrected; the last few tokens are then made up with the tail of one more sentence placed
    at the very start of the context, like an excerpt that begins mid-text. Needles sit on sentence
    boundaries at their depths. Where the tokenizer's merges make an exact count impossible, the closest count
    below the target is kept and reported.
    """
    _check_clean([n.text for n in needles], backend)
    counts = _UnitTokens.counts(backend, body)
    n_units = len(body.units)

    floor = count_prompt(_assemble(body, start, 0, needles))
    if floor > target_prompt_tokens:
        raise UsageError(
            f"length too short: instructions, question and needles alone take {floor} tokens but only "
            f"{target_prompt_tokens} are left after the output budget; ask for a longer length"
        )

    def cumulative(n: int) -> np.ndarray:
        idx = (start + np.arange(n)) % n_units
        return np.concatenate([[0], np.cumsum(counts[idx])])

    budget = target_prompt_tokens - floor
    horizon = int(budget / max(1.0, float(counts.mean())) * 1.2) + 16
    cum = cumulative(horizon)
    n = int(np.searchsorted(cum, budget, side="right")) - 1

    best: tuple[int, str, int] | None = None
    for _ in range(12):
        while n + 2 >= len(cum):
            horizon *= 2
            cum = cumulative(horizon)
        context = _assemble(body, start, n, needles, cum[: n + 1])
        total = count_prompt(context)
        if total <= target_prompt_tokens and (best is None or total > best[0]):
            best = (total, context, n)
        gap = target_prompt_tokens - total
        if gap == 0:
            break
        if gap < 0:
            # Drop just enough whole sentences to get back under the target.
            n = min(n - 1, int(np.searchsorted(cum, cum[n] + gap, side="right")) - 1)
            n = max(n, 0)
            continue
        if gap < int(cum[n + 1] - cum[n]):
            break  # not even one more sentence fits: the rest is made up below
        n = int(np.searchsorted(cum, cum[n] + gap, side="right")) - 1

    assert best is not None  # the floor check guarantees that the bare needles fit
    total, context, n = best
    units = n
    # Tokenizer merges at the seam can make one cut miss by a token; a sentence fewer gives other cuts.
    for fewer in range(4):
        if total == target_prompt_tokens or n - fewer < 0:
            break
        base = best[1] if fewer == 0 else _assemble(body, start, n - fewer, needles, cum[: n - fewer + 1])
        base_total = best[0] if fewer == 0 else count_prompt(base)
        got, candidate = _fill_with_fragment(backend, count_prompt, body, start, base, base_total,
                                             target_prompt_tokens)  # fmt: skip
        if got > total:
            total, context, units = got, candidate, n - fewer
    return FittedContext(context, total, _depths(context, needles), units)


def _assemble(
    body: Corpus, start: int, n: int, needles: Sequence[Needle], cum: np.ndarray | None = None
) -> str:
    """Join ``n`` haystack units from ``start`` with each needle on the sentence boundary nearest its depth."""
    units = [body.units[(start + i) % len(body.units)] for i in range(n)]
    boundaries = [int(c) for c in cum] if n and cum is not None else [0] * (n + 1)
    inserts: dict[int, list[str]] = {}
    for needle in needles:
        if not 0.0 <= needle.depth <= 1.0:
            raise UsageError(f"needle depth {needle.depth} is outside [0, 1]")
        want = needle.depth * boundaries[-1]
        j = bisect.bisect_left(boundaries, want)
        if j > 0 and (j == len(boundaries) or want - boundaries[j - 1] <= boundaries[j] - want):
            j -= 1
        inserts.setdefault(j, []).append(" " + needle.text.strip())
    pieces: list[str] = []
    for j in range(n + 1):
        pieces.extend(inserts.get(j, ()))
        if j < n:
            pieces.append(units[j])
    return "".join(pieces).lstrip()


def _depths(context: str, needles: Sequence[Needle]) -> tuple[float, ...]:
    """Where each needle ended up, as the share of the context's characters before it."""
    size = max(1, len(context))
    return tuple(round(max(0, context.find(n.text.strip())) / size, 4) for n in needles)


def _fill_with_fragment(
    backend: Backend,
    count_prompt: Callable[[str], int],
    body: Corpus,
    start: int,
    context: str,
    total: int,
    target: int,
) -> tuple[int, str]:
    """Make up the last few tokens with the tail of the text that precedes the haystack in the stream.

    Token-level tails are tried first, steered by each miss; where seam merges defeat them (a lone "." can
    cost two tokens after a SentencePiece-style prefix space), word-level tails with either separator are
    tried, each checked cheaply on its own before the whole prompt is counted.
    """
    gap = target - total
    source, i = "", 1
    while backend.count_tokens(source) < gap + 8 and i <= len(body.units) * 4:
        source = body.units[(start - i) % len(body.units)] + source
        i += 1
    best = (total, context)
    tried: set[str] = set()

    def attempt(fragment: str, separator: str = " ") -> int | None:
        nonlocal best
        candidate = fragment + separator + context
        if not fragment or candidate in tried:
            return None
        tried.add(candidate)
        count = count_prompt(candidate)
        if best[0] < count <= target:
            best = (count, candidate)
        return count

    ids = backend.encode(source)
    k = min(gap, len(ids))
    for _ in range(6):
        if not 0 < k <= len(ids):
            break
        count = attempt(backend.decode(ids[-k:]).strip())
        if count is None or count == target:
            break
        k += target - count
    if best[0] == target:
        return best
    words = source.split()
    for j in range(1, len(words) + 1):
        fragment = " ".join(words[-j:])
        alone = backend.count_tokens(fragment)
        if alone > gap + 2:
            break
        if alone >= gap - 2 and any(attempt(fragment, sep) == target for sep in (" ", "\n")):
            return best
    return best

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
_SPACE = re.compile(r"\s*")


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
        # The next character after the whitespace, found in place: copying the rest of the text at every
        # candidate made splitting quadratic in the text's length.
        after = _SPACE.match(text, end).end()
        nxt = text[after] if after < len(text) else ""
        # A sentence ends before a capital, a digit, a quote or the end of the text; not before "and so on".
        if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'([" or text.startswith("\n\n", end)):
            continue
        units.append(text[start:end])
        start = end
    if text[start:].strip():
        units.append(text[start:])
    return units


# ---------------------------------------------------------------------------------------------------------
# Corpora


class UnitSource:
    """A stream of haystack units by index; index -1, -2, ... is the text that precedes the stream."""

    def unit(self, index: int) -> str:
        raise NotImplementedError

    def units(self, start: int, count: int) -> list[str]:
        return [self.unit(start + i) for i in range(count)]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        """Tokens of each unit alone; units start with their whitespace, so these add up to the whole."""
        return np.array(count_many(backend, self.units(start, count)), dtype=np.int64)


@dataclass(frozen=True)
class Corpus(UnitSource):
    """Sentence units that a haystack streams through, cycling when a context needs more than there is."""

    name: str
    sentences: tuple[str, ...]
    description: str

    def unit(self, index: int) -> str:
        return self.sentences[index % len(self.sentences)]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        key = (backend.tokenizer_fingerprint(), self.name)
        if key not in _CORPUS_COUNTS:
            _check_clean(self.sentences, backend)
            _CORPUS_COUNTS[key] = np.array(count_many(backend, list(self.sentences)), dtype=np.int64)
        return _CORPUS_COUNTS[key][(start + np.arange(count)) % len(self.sentences)]


_CORPUS_COUNTS: dict[tuple[str, str], np.ndarray] = {}


class GeneratedUnits(UnitSource):
    """Units a task makes up on demand (records, rows, assignments), each made and counted once."""

    def __init__(self, make, name: str = "generated") -> None:
        self.make = make
        self.name = name
        self._units: dict[int, str] = {}
        self._counts: dict[int, int] = {}

    def unit(self, index: int) -> str:
        if index not in self._units:
            self._units[index] = self.make(index)
        return self._units[index]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        missing = [i for i in range(start, start + count) if i not in self._counts]
        if missing:
            texts = [self.unit(i) for i in missing]
            _check_clean(texts, backend)
            self._counts.update(zip(missing, count_many(backend, texts), strict=True))
        return np.array([self._counts[i] for i in range(start, start + count)], dtype=np.int64)


def count_many(backend: Backend, texts: list[str]) -> list[int]:
    """Token counts of many texts, in one batch."""
    return list(backend.count_tokens_batch(texts))


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
            tuple(" " + sentence for sentence in _NOISE_SENTENCES),
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
            units.extend(" " + sentence.strip() for sentence in sentences[1:])
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
    source: UnitSource,
    needles: Sequence[Needle],
    target_prompt_tokens: int,
    start: int,
) -> FittedContext:
    """Fill a context so that the whole prompt counts exactly ``target_prompt_tokens`` in the model's tokenizer.

    ``count_prompt(context)`` renders the full request (template, instructions, question, answer prefix) and
    counts it. Whole units are chosen from per-unit counts (computed once), checked against the real count,
    and corrected; the last few tokens are then made up with the tail of the text that precedes the stream,
    placed at the very start of the context like an excerpt that begins mid-text. Needles sit on unit
    boundaries at their depths. Where the tokenizer's merges make an exact count impossible, the closest count
    below the target is kept and reported.
    """
    _check_clean([n.text for n in needles], backend)
    floor = count_prompt(_assemble(source, start, 0, needles))
    if floor > target_prompt_tokens:
        raise UsageError(
            f"length too short: instructions, question and needles alone take {floor} tokens but only "
            f"{target_prompt_tokens} are left after the output budget; ask for a longer length"
        )
    budget = target_prompt_tokens - floor
    probe = source.counts(backend, start, 32)
    horizon = int(budget / max(1.0, float(probe.mean())) * 1.2) + 32

    def cumulative(n: int) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(source.counts(backend, start, n))])

    cum = cumulative(horizon)
    n = int(np.searchsorted(cum, budget, side="right")) - 1

    best: tuple[int, str, int] | None = None
    for _ in range(12):
        while n + 2 >= len(cum):
            horizon *= 2
            cum = cumulative(horizon)
        context = _assemble(source, start, n, needles, cum[: n + 1])
        total = count_prompt(context)
        if total <= target_prompt_tokens and (best is None or total > best[0]):
            best = (total, context, n)
        gap = target_prompt_tokens - total
        if gap == 0:
            break
        if gap < 0:
            # Drop just enough whole units to get back under the target.
            n = max(0, min(n - 1, int(np.searchsorted(cum, cum[n] + gap, side="right")) - 1))
            continue
        if gap < int(cum[n + 1] - cum[n]):
            break  # not even one more unit fits: the rest is made up below
        n = int(np.searchsorted(cum, cum[n] + gap, side="right")) - 1

    assert best is not None  # the floor check guarantees that the bare needles fit
    total, context, n = best
    units = n
    # Tokenizer merges at the seam can make one cut miss by a token; a unit fewer gives other cuts.
    for fewer in range(4):
        if total == target_prompt_tokens or n - fewer < 0:
            break
        raw = _assemble(source, start, n - fewer, needles, cum[: n - fewer + 1], strip=False)
        base = raw.lstrip()
        # The first unit's own whitespace joins the fragment to it (a newline keeps a record on its line).
        lead = raw[: len(raw) - len(base)] or " "
        base_total = best[0] if fewer == 0 else count_prompt(base)
        got, candidate = _fill_with_fragment(
            backend, count_prompt, source, start, base, base_total, target_prompt_tokens, lead
        )
        if got > total:
            total, context, units = got, candidate, n - fewer
    return FittedContext(context, total, _depths(context, needles), units)


def _preceding_text(backend: Backend, source: UnitSource, start: int, tokens: int) -> str:
    """At least ``tokens`` tokens of the text just before the stream's start (or all of 64 units)."""
    preceding, i = "", 1
    while backend.count_tokens(preceding) < tokens and i <= 64:
        preceding = source.unit(start - i) + preceding
        i += 1
    return preceding


def _assemble(
    source: UnitSource,
    start: int,
    n: int,
    needles: Sequence[Needle],
    cum: np.ndarray | None = None,
    strip: bool = True,
) -> str:
    """Join ``n`` units from ``start`` with each needle on the unit boundary nearest its depth."""
    units = source.units(start, n)
    boundaries = [int(c) for c in cum] if n and cum is not None else [0] * (n + 1)
    inserts: dict[int, list[str]] = {}
    for needle in needles:
        if not 0.0 <= needle.depth <= 1.0:
            raise UsageError(f"needle depth {needle.depth} is outside [0, 1]")
        want = needle.depth * boundaries[-1]
        j = bisect.bisect_left(boundaries, want)
        if j > 0 and (j == len(boundaries) or want - boundaries[j - 1] <= boundaries[j] - want):
            j -= 1
        inserts.setdefault(j, []).append(needle.text if needle.text[:1].isspace() else " " + needle.text)
    pieces: list[str] = []
    for j in range(n + 1):
        pieces.extend(inserts.get(j, ()))
        if j < n:
            pieces.append(units[j])
    text = "".join(pieces)
    return text.lstrip() if strip else text


def _depths(context: str, needles: Sequence[Needle]) -> tuple[float, ...]:
    """Where each needle ended up, as the share of the context's characters before it."""
    size = max(1, len(context))
    return tuple(round(max(0, context.find(n.text.strip())) / size, 4) for n in needles)


def _fill_with_fragment(
    backend: Backend,
    count_prompt: Callable[[str], int],
    source: UnitSource,
    start: int,
    context: str,
    total: int,
    target: int,
    lead: str = " ",
) -> tuple[int, str]:
    """Make up the last few tokens with the tail of the text that precedes the haystack in the stream.

    ``lead`` is the whitespace the first unit started with (a newline keeps a record on its own line).

    Token-level tails are tried first, steered by each miss; where seam merges defeat them (a lone "." can
    cost two tokens after a SentencePiece-style prefix space), word-level tails with either separator are
    tried, each checked cheaply on its own before the whole prompt is counted.
    """
    gap = target - total
    preceding = _preceding_text(backend, source, start, gap + 8)
    best = (total, context)
    tried: set[str] = set()

    def attempt(fragment: str, separator: str = lead) -> int | None:
        nonlocal best
        candidate = fragment + separator + context
        if not fragment or candidate in tried:
            return None
        tried.add(candidate)
        count = count_prompt(candidate)
        if best[0] < count <= target:
            best = (count, candidate)
        return count

    ids = backend.encode(preceding)
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
    words = preceding.split()
    for j in range(1, len(words) + 1):
        fragment = " ".join(words[-j:])
        alone = backend.count_tokens(fragment)
        if alone > gap + 2:
            break
        if alone >= gap - 2 and any(
            attempt(fragment, sep) == target for sep in dict.fromkeys((lead, " ", "\n"))
        ):
            return best
    return best

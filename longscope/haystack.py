"""Haystacks of an exact token length: built-in corpora, sentence splitting, depth placement and fitting."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from longscope.core import Backend, UsageError
from longscope.piece_count import PieceCounter, find_frame

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

    def knows_joins(self, backend: Backend) -> bool:
        """Whether ``loose_joins`` can say, for this tokenizer, where neighbouring units do not add up."""
        return False

    def loose_joins(self, backend: Backend, start: int, count: int) -> list[int]:
        """The boundaries ``1..count-1`` between units (``start`` on) whose two counts do not add up to the
        count of the two together: where a prompt cannot be cut for counting."""
        return _loose_between(backend, self.units(start, count))


@dataclass(frozen=True)
class Corpus(UnitSource):
    """Sentence units that a haystack streams through, cycling when a context needs more than there is."""

    name: str
    sentences: tuple[str, ...]
    description: str

    def unit(self, index: int) -> str:
        return self.sentences[index % len(self.sentences)]

    def units(self, start: int, count: int) -> list[str]:
        # Whole cycles by tuple repetition: a 128k context is tens of thousands of units.
        size = len(self.sentences)
        first = start % size
        cycles = (first + count) // size + 1
        return list((self.sentences * cycles)[first : first + count])

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        key = (backend.tokenizer_fingerprint(), self.name)
        if key not in _CORPUS_COUNTS:
            _check_clean(self.sentences, backend)
            _CORPUS_COUNTS[key] = np.array(count_many(backend, list(self.sentences)), dtype=np.int64)
        # The cycle turned to start at ``start`` and repeated to ``count``.
        return np.resize(np.roll(_CORPUS_COUNTS[key], -(start % len(self.sentences))), count)

    def knows_joins(self, backend: Backend) -> bool:
        return True

    def loose_joins(self, backend: Backend, start: int, count: int) -> list[int]:
        key = (backend.tokenizer_fingerprint(), self.name)
        if key not in _CORPUS_LOOSE:
            # Each sentence with the one that follows it in the cycle: the only pairs a haystack joins.
            following = self.sentences[1:] + self.sentences[:1]
            together = count_many(backend, [a + b for a, b in zip(self.sentences, following, strict=True)])
            alone = self.counts(backend, 0, len(self.sentences))
            _CORPUS_LOOSE[key] = np.flatnonzero(np.array(together) != alone + np.roll(alone, -1))
        loose = _CORPUS_LOOSE[key]
        if not len(loose) or count < 2:
            return []
        # Boundary j sits between units start+j-1 and start+j: loose when sentence (start+j-1) mod size is.
        size = len(self.sentences)
        first = (start) % size
        found: list[int] = []
        for position in loose.tolist():
            j = (position - first) % size + 1
            while j < count:
                found.append(j)
                j += size
        return sorted(found)


_CORPUS_COUNTS: dict[tuple[str, str], np.ndarray] = {}
_CORPUS_LOOSE: dict[tuple[str, str], np.ndarray] = {}


def forget_counts() -> None:
    """Drop every unit count learned so far (a benchmark times each family from a cold start)."""
    _CORPUS_COUNTS.clear()
    _CORPUS_LOOSE.clear()
    _TEXT_COUNTS.clear()
    _RUNS_ADD_UP.clear()
    _PIECES_ADD_UP.clear()
    _INDEXED_COUNTS.clear()
    _PAIR_COUNTS.clear()


class GeneratedUnits(UnitSource):
    """Units a task makes up on demand (records, rows, assignments), each made and counted once.

    Given ``pieces`` (index → the unit's text cut into pieces: a number, a word, a fixed phrase), a unit is
    counted as the sum of its pieces' cached counts once this tokenizer is checked to add them up on this
    family's units (``pieces_add_up``): fresh units made of pieces seen before then need no encoding, and
    neither do the joins between units (every unit boundary is a piece boundary)."""

    def __init__(
        self,
        make,
        name: str = "generated",
        pieces: Callable[[int], Sequence[str]] | None = None,
        unit_counts: Callable[[Backend, int, int], np.ndarray] | None = None,
    ) -> None:
        self.make = make
        self.name = name
        self.pieces = pieces
        # (backend, start >= 0, count) -> the same sums of piece counts, worked out in bulk by a task that
        # knows its units' layout; checked against the pieces (and so against whole encodings) with them.
        self.unit_counts = unit_counts
        self._units: dict[int, str] = {}

    def unit(self, index: int) -> str:
        if index not in self._units:
            self._units[index] = self.make(index)
        return self._units[index]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        if self.pieces is not None and self.pieces_add_up(backend):
            if self.unit_counts is None:
                return _counts_from_pieces(backend, [self.pieces(start + i) for i in range(count)])
            # Units before the stream (negative indices: the filler a task may lay first) go by their pieces;
            # the task's bulk counts start at index 0.
            before = min(count, max(0, -start))
            head = _counts_from_pieces(backend, [self.pieces(start + i) for i in range(before)])
            if before == count:
                return head
            return np.concatenate([head, self.unit_counts(backend, start + before, count - before)])
        return np.array(counts_by_text(backend, self.units(start, count)), dtype=np.int64)

    def knows_joins(self, backend: Backend) -> bool:
        return True

    def loose_joins(self, backend: Backend, start: int, count: int) -> list[int]:
        if self.pieces is not None and self.pieces_add_up(backend):
            return []
        return super().loose_joins(backend, start, count)

    def pieces_add_up(self, backend: Backend) -> bool:
        """Whether this tokenizer counts this family's units as the sum of their pieces, and runs of units as
        the sum of the units: checked once per tokenizer and family name on probe runs spread along the stream
        (short and long numbers alike), each unit also checked to be exactly its pieces joined."""
        key = (backend.tokenizer_fingerprint(), self.name)
        if key not in _PIECES_ADD_UP:
            assert self.pieces is not None
            verdict = True
            for first in _PIECE_PROBES:
                indices = range(first, first + _RUN)
                cut = [list(self.pieces(i)) for i in indices]
                units = [self.unit(i) for i in indices]
                if any("".join(parts) != unit for parts, unit in zip(cut, units, strict=True)):
                    verdict = False
                    break
                by_pieces = _counts_from_pieces(backend, cut)
                together = count_many(backend, [*units, "".join(units)])
                if together[:-1] != by_pieces.tolist() or together[-1] != int(by_pieces.sum()):
                    verdict = False
                    break
                if self.unit_counts is not None and (
                    self.unit_counts(backend, first, _RUN).tolist() != by_pieces.tolist()
                ):
                    raise AssertionError(
                        f"{self.name}: bulk unit counts differ from the sums of their pieces"
                    )
            _PIECES_ADD_UP[key] = verdict
        return _PIECES_ADD_UP[key]


# Where the piece check probes a family's stream: the first units, and units far enough along that their
# numbering has four and five digits.
_PIECE_PROBES = (0, 700, 3000)
# Per (tokenizer fingerprint, family name): whether units count as the sum of their pieces.
_PIECES_ADD_UP: dict[tuple[str, str], bool] = {}


def _counts_from_pieces(backend: Backend, cut: list[Sequence[str]]) -> np.ndarray:
    """Each unit's count as the sum of its pieces' cached counts (every distinct piece tokenised once)."""
    flat = [piece for parts in cut for piece in parts]
    counted = counts_by_text(backend, flat)
    sizes = np.fromiter((len(parts) for parts in cut), dtype=np.int64, count=len(cut))
    ends = np.cumsum(sizes)
    totals = np.concatenate([[0], np.cumsum(np.array(counted, dtype=np.int64))])
    return totals[ends] - totals[ends - sizes]


# Per (tokenizer fingerprint, series name): token counts of a series' texts by index, -1 where not yet counted.
_INDEXED_COUNTS: dict[tuple[str, str], np.ndarray] = {}


def indexed_counts(
    backend: Backend, series: str, indices: np.ndarray, text_of: Callable[[int], str]
) -> np.ndarray:
    """Token counts of ``text_of(i)`` for each of ``indices`` (non-negative ints): each index of a named series
    (numbered item heads, the words of a fixed word space) is tokenised once per tokenizer and then looked up
    as an array, with no text built again."""
    indices = np.asarray(indices, dtype=np.int64)
    key = (backend.tokenizer_fingerprint(), series)
    known = _INDEXED_COUNTS.get(key, np.empty(0, dtype=np.int64))
    need = int(indices.max()) + 1 if indices.size else 0
    if need > len(known):
        known = np.concatenate([known, np.full(max(need, 2 * len(known)) - len(known), -1, dtype=np.int64)])
        _INDEXED_COUNTS[key] = known
    missing = np.unique(indices[known[indices] < 0])
    if missing.size:
        texts = [text_of(i) for i in missing.tolist()]
        _check_clean(texts, backend)
        known[missing] = count_many(backend, texts)
    return known[indices]


def slot_counts(
    backend: Backend, fixed: Sequence[str], slots: Sequence[Sequence[str]], places: np.ndarray
) -> np.ndarray:
    """Sums of piece counts of units made of the ``fixed`` pieces plus one piece per slot, ``places[s]`` the
    chosen piece of slot ``s`` for each unit: what ``GeneratedUnits`` sums piece by piece, in bulk."""
    total = np.full(places.shape[1], sum(counts_by_text(backend, list(fixed))), dtype=np.int64)
    for options, chosen in zip(slots, places, strict=True):
        total += np.array(counts_by_text(backend, list(options)), dtype=np.int64)[chosen]
    return total


def blocked_counts(
    start: int, count: int, size: int, block_counts: Callable[[int], np.ndarray]
) -> np.ndarray:
    """Counts of units ``start`` to ``start + count`` of a stream drawn in blocks of ``size`` units, where
    ``block_counts(b)`` gives those of block ``b`` (units ``b * size`` on)."""
    out = np.empty(count, dtype=np.int64)
    at = start
    while at < start + count:
        block, offset = divmod(at, size)
        take = min(size - offset, start + count - at)
        out[at - start : at - start + take] = block_counts(block)[offset : offset + take]
        at += take
    return out


def count_many(backend: Backend, texts: list[str]) -> list[int]:
    """Token counts of many texts, in one batch."""
    return list(backend.count_tokens_batch(texts))


# Unit counts by text, per tokenizer fingerprint: units recur across samples (a record pool, a table's rows,
# the same documents), and a text counted once need not be tokenised again.
_TEXT_COUNTS: dict[str, dict[str, int]] = {}
# Whether a run of units tokenises as the sum of its units, by the run's text, per tokenizer fingerprint.
_RUNS_ADD_UP: dict[str, dict[str, bool]] = {}
_TEXT_MEMO_LIMIT = 400_000  # a 343,000-word made-up vocabulary (common_words) fits whole
# Run texts are long (tens of units each): fewer are kept, enough for every run of a few 128k contexts.
_RUN_MEMO_LIMIT = 20_000
# Units checked together for joins that do not add up; a run that does not is checked pair by pair.
_RUN = 32


def counts_by_text(backend: Backend, texts: list[str]) -> list[int]:
    """Token counts of units, each distinct text tokenised once per tokenizer (and checked for special text)."""
    memo = _TEXT_COUNTS.setdefault(backend.tokenizer_fingerprint(), {})
    missing = [t for t in dict.fromkeys(texts) if t not in memo]
    if missing:
        if len(memo) + len(missing) > _TEXT_MEMO_LIMIT:
            memo.clear()
            missing = list(dict.fromkeys(texts))
        _check_clean(missing, backend)
        memo.update(zip(missing, count_many(backend, missing), strict=True))
    return [memo[t] for t in texts]


def _loose_between(backend: Backend, texts: list[str]) -> list[int]:
    """The boundaries ``j`` (between ``texts[j-1]`` and ``texts[j]``) where the two counts do not add up.

    Runs of ``_RUN`` units, overlapping by one so that every boundary lies inside a run, are counted whole
    and compared with the sum of their units; only a run that differs is checked pair by pair.
    """
    if len(texts) < 2:
        return []
    fingerprint = backend.tokenizer_fingerprint()
    verdicts = _RUNS_ADD_UP.setdefault(fingerprint, {})
    alone = counts_by_text(backend, texts)
    starts = _run_starts(texts)
    ends = [*(a + 1 for a in starts[1:]), len(texts)]  # each run takes the next one's first unit too
    runs = ["".join(texts[a:b]) for a, b in zip(starts, ends, strict=True)]
    unknown = list(dict.fromkeys(run for run in runs if run not in verdicts))
    if unknown:
        if len(verdicts) + len(unknown) > _RUN_MEMO_LIMIT:
            verdicts.clear()
            unknown = list(dict.fromkeys(runs))
        whole = dict(zip(unknown, count_many(backend, unknown), strict=True))
        for a, b, run in zip(starts, ends, runs, strict=True):
            if run in whole:
                verdicts[run] = whole[run] == sum(alone[a:b])
    loose: list[int] = []
    for a, b, run in zip(starts, ends, runs, strict=True):
        if verdicts[run]:
            continue
        pairs = [texts[j - 1] + texts[j] for j in range(a + 1, b)]
        for j, together in zip(range(a + 1, b), _pair_counts(backend, pairs), strict=True):
            if together != alone[j - 1] + alone[j]:
                loose.append(j)
    return sorted(set(loose))


# Counts of two neighbouring units together, per tokenizer fingerprint: a run that does not add up is checked
# pair by pair, and the same runs recur in every sample that cycles through the same corpus.
_PAIR_COUNTS: dict[str, dict[str, int]] = {}


def _pair_counts(backend: Backend, pairs: list[str]) -> list[int]:
    """``count_many`` of joined unit pairs, each distinct pair tokenised once per tokenizer."""
    memo = _PAIR_COUNTS.setdefault(backend.tokenizer_fingerprint(), {})
    missing = [pair for pair in dict.fromkeys(pairs) if pair not in memo]
    if missing:
        if len(memo) + len(missing) > _RUN_MEMO_LIMIT * 10:
            memo.clear()
            missing = list(dict.fromkeys(pairs))
        memo.update(zip(missing, count_many(backend, missing), strict=True))
    return [memo[pair] for pair in pairs]


def _run_starts(texts: list[str]) -> list[int]:
    """Where runs of units start: at units whose text hashes to a multiple of ``_RUN``, so runs depend on the
    texts and not on where a sample's stream began (the same records give the same runs in every sample);
    a run is cut after ``4 * _RUN`` units whatever the texts."""
    starts = [0]
    for j in range(1, len(texts) - 1):
        if hash(texts[j]) % _RUN == 0 or j - starts[-1] >= 4 * _RUN:
            starts.append(j)
    return starts


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
    render: Callable[[str], str] | None = None,
) -> FittedContext:
    """Fill a context so that the whole prompt counts exactly ``target_prompt_tokens`` in the model's tokenizer.

    ``count_prompt(context)`` renders the full request (template, instructions, question, answer prefix) and
    counts it. Whole units are chosen from per-unit counts (computed once), checked against the real count,
    and corrected; the last few tokens are then made up with the tail of the text that precedes the stream,
    placed at the very start of the context like an excerpt that begins mid-text. Needles sit on unit
    boundaries at their depths. Where the tokenizer's merges make an exact count impossible, the closest count
    below the target is kept and reported.

    Given ``render`` (the context → the whole prompt, as ``count_prompt`` renders it) and a source whose unit
    joins are known, candidates are counted from the cached unit counts plus the few stretches around the
    needles and the frame (``piece_count``), without assembling or encoding the whole prompt per candidate;
    the choices, and so the context, are the same as counting each candidate whole.
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
    # A little beyond the estimate: counts extend cheaply when the search needs more units.
    horizon = int(budget / max(1.0, float(probe.mean())) * 1.05) + 32

    def cumulative(n: int, known: np.ndarray | None = None) -> np.ndarray:
        """Cumulative counts of the first ``n`` units, extending ``known`` (those of fewer) where given."""
        if known is None:
            return np.concatenate([[0], np.cumsum(source.counts(backend, start, n))])
        have = len(known) - 1
        more = np.cumsum(source.counts(backend, start + have, n - have)) + known[-1]
        return np.concatenate([known, more])

    cum = cumulative(horizon)
    counter = _piece_counter(backend, render, source, start, needles, cum)

    def count(n: int, prefix: str = "") -> int:
        """The whole prompt over ``n`` units (and ``prefix`` before them)."""
        if counter is not None and counter.cum is cum:
            return counter.count(n, _placements(n, needles, cum[: n + 1] if n else None), prefix)
        base = _assemble(source, start, n, needles, cum[: n + 1])
        return count_prompt(prefix + base if prefix else base)

    n = int(np.searchsorted(cum, budget, side="right")) - 1

    best: tuple[int, int] | None = None  # (count, units)
    for _ in range(12):
        while n + 2 >= len(cum):
            horizon = int(horizon * 1.25) + 32  # counts extend, so a small step wastes nothing
            cum = cumulative(horizon, cum)
            if counter is not None:
                counter.cum = cum
        total = count(n)
        if total <= target_prompt_tokens and (best is None or total > best[0]):
            best = (total, n)
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
    total, n = best
    units, prefix = n, ""
    # Tokenizer merges at the seam can make one cut miss by a token; a unit fewer gives other cuts.
    for fewer in range(4):
        if total == target_prompt_tokens or n - fewer < 0:
            break
        # The first unit's own whitespace joins the fragment to it (a newline keeps a record on its line).
        lead = _leading_space(source, start, n - fewer, needles, cum[: n - fewer + 1]) or " "
        base_total = best[0] if fewer == 0 else count(n - fewer)
        got, made = _fill_with_fragment(
            backend,
            functools.partial(count, n - fewer),
            source,
            start,
            base_total,
            target_prompt_tokens,
            lead,
        )
        if got > total:
            total, units, prefix = got, n - fewer, made
    context = prefix + _assemble(source, start, units, needles, cum[: units + 1])
    if counter is not None and render is not None and render(context) != _framed(counter, context):
        # The template did not wrap this context plainly after all: count it whole, as before.
        return fit_context(backend, count_prompt, source, needles, target_prompt_tokens, start)
    return FittedContext(context, total, _depths(context, needles), units)


def _framed(counter: PieceCounter, context: str) -> str:
    return counter.frame.before + context + counter.frame.after


def _joins_within(backend: Backend, source: UnitSource, start: int) -> Callable[[int], list[int]]:
    """``n`` → the loose joins among the first ``n`` units, found once for the longest stretch asked."""
    found: list[int] = []
    checked = 0

    def joins(n: int) -> list[int]:
        nonlocal found, checked
        if n > checked:
            # Ask for a margin beyond n: the search asks for slightly more or fewer units each time.
            checked = int(n * 1.1) + 8
            found = source.loose_joins(backend, start, checked)
        return [j for j in found if j < n]

    return joins


def _piece_counter(
    backend: Backend,
    render: Callable[[str], str] | None,
    source: UnitSource,
    start: int,
    needles: Sequence[Needle],
    cum: np.ndarray,
) -> PieceCounter | None:
    """A counter from cached unit counts, where the prompt's frame and the source's unit joins are known."""
    if render is None or not source.knows_joins(backend):
        return None
    probe = source.unit(start) + "".join(n.text for n in needles[:1])
    frame = find_frame(render, " " + probe.strip() + " ")
    if frame is None:
        return None
    return PieceCounter(
        backend,
        frame,
        cum,
        _joins_within(backend, source, start),
        lambda a, b: source.units(start + a, b - a),
    )


def _preceding_text(backend: Backend, source: UnitSource, start: int, tokens: int) -> str:
    """At least ``tokens`` tokens of the text just before the stream's start (or all of 64 units)."""
    preceding, i = "", 1
    while backend.count_tokens(preceding) < tokens and i <= 64:
        preceding = source.unit(start - i) + preceding
        i += 1
    return preceding


def _placements(n: int, needles: Sequence[Needle], cum: np.ndarray | None) -> dict[int, list[str]]:
    """Each needle's text by the unit boundary nearest its depth (boundary ``j`` comes before unit ``j``)."""
    boundaries = cum if n and cum is not None else np.zeros(n + 1, dtype=np.int64)
    inserts: dict[int, list[str]] = {}
    for needle in needles:
        if not 0.0 <= needle.depth <= 1.0:
            raise UsageError(f"needle depth {needle.depth} is outside [0, 1]")
        want = needle.depth * int(boundaries[-1])
        j = int(np.searchsorted(boundaries, want, side="left"))
        if j > 0 and (j == len(boundaries) or want - int(boundaries[j - 1]) <= int(boundaries[j]) - want):
            j -= 1
        inserts.setdefault(j, []).append(needle.text if needle.text[:1].isspace() else " " + needle.text)
    return inserts


def _leading_space(source: UnitSource, start: int, n: int, needles: Sequence[Needle], cum: np.ndarray) -> str:
    """The whitespace the assembled context would start with, from its first pieces only."""
    inserts = _placements(n, needles, cum if n else None)
    pieces = [*inserts.get(0, ()), *source.units(start, min(n, 3))]
    head = "".join(pieces[:4])
    return head[: len(head) - len(head.lstrip())]


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
    inserts = _placements(n, needles, cum)
    pieces: list[str] = []
    previous = 0
    for j in sorted(inserts):
        pieces.extend(units[previous:j])
        pieces.extend(inserts[j])
        previous = j
    pieces.extend(units[previous:])
    text = "".join(pieces)
    return text.lstrip() if strip else text


def _depths(context: str, needles: Sequence[Needle]) -> tuple[float, ...]:
    """Where each needle ended up, as the share of the context's characters before it."""
    size = max(1, len(context))
    return tuple(round(max(0, context.find(n.text.strip())) / size, 4) for n in needles)


def _fill_with_fragment(
    backend: Backend,
    count_with: Callable[[str], int],
    source: UnitSource,
    start: int,
    total: int,
    target: int,
    lead: str = " ",
) -> tuple[int, str]:
    """Make up the last few tokens with the tail of the text that precedes the haystack in the stream.

    ``count_with(prefix)`` counts the whole prompt with ``prefix`` put before the context, which alone counts
    ``total``; returns the best count reached and its prefix (a fragment and its separator, or ""). ``lead`` is
    the whitespace the first unit started with (a newline keeps a record on its own line).

    Token-level tails are tried first, steered by each miss; where seam merges defeat them (a lone "." can
    cost two tokens after a SentencePiece-style prefix space), word-level tails with either separator are
    tried, each checked cheaply on its own before the whole prompt is counted.
    """
    gap = target - total
    preceding = _preceding_text(backend, source, start, gap + 8)
    best = (total, "")
    tried: set[str] = set()

    def attempt(fragment: str, separator: str = lead) -> int | None:
        nonlocal best
        prefix = fragment + separator
        if not fragment or prefix in tried:
            return None
        tried.add(prefix)
        count = count_with(prefix)
        if best[0] < count <= target:
            best = (count, prefix)
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

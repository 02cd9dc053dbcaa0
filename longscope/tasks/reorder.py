"""Reorder: put shuffled labelled segments of a text back in their original order."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, NamedTuple

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import FittedContext, UnitSource, corpus, count_many, counts_by_text, split_sentences
from longscope.piece_count import PieceCounter, find_frame
from longscope.tasks.base import EVERY_UNIT, Task, prompt_tokens


def _noise(i: int) -> str:
    # Text before the stream pads the first few tokens: plain filler, never part of a segment.
    return corpus("noise").unit(i)


# Capitals that are not English words on their own ("A", "I", "O"), so prose in an answer is not read as labels.
_LABEL_LETTERS = "BCDEFGHJKLMNPQRSTUVWXYZ"
_MARGIN = 2  # tokens kept free when sizing the segments: seams may tokenise a little differently in place

_REORDER_TEMPLATE = (
    "Below are {segments} segments of a longer text. Each segment starts with its label in square brackets. "
    "The segments have been shuffled, so they are not in their original order.\n\n{{context}}\n\n{{question}}"
)


@functools.cache
def _essay_starts() -> tuple[int, ...]:
    """Where each essay begins among the essay corpus's sentence units (titles mark the starts in the file)."""
    text = resources.files("longscope.corpora").joinpath("essays.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    starts: list[int] = []
    index, new_essay = 0, True
    for paragraph in paragraphs:
        if paragraph[-1] not in ".!?\"'":  # a title, which the corpus drops
            new_essay = True
            continue
        if new_essay:
            starts.append(index)
            new_essay = False
        index += len(split_sentences(" ".join(paragraph.split())))
    sentences = corpus("essay").sentences
    if index != len(sentences) or not starts:
        # The file no longer parses as the corpus does: fall back to paragraph starts.
        return tuple(i for i, unit in enumerate(sentences) if unit.startswith("\n\n"))
    return tuple(starts)


class _Layout(NamedTuple):
    units: list[str]  # the context's units, segments in shuffled order
    bounds: list[int]  # segment k (original order) holds sentences bounds[k] .. bounds[k+1]-1 from start
    last_label_unit: int  # index of the unit that carries the last segment's label
    wall: int  # tokens of the unit after the segments, which must never fit
    places: np.ndarray  # each unit's sentence in the essay corpus; -1 for a unit that carries a label


class _LayoutUnits(UnitSource):
    """A layout's units, then the wall, with noise sentences before and after: counted from the corpora's
    cached sentence counts, and its joins told from the corpora's own (two sentences that follow each other in
    a corpus join as they do there); only the few joins at a label or the wall are counted pair by pair."""

    def __init__(self, layout: _Layout, wall: str) -> None:
        self.layout = layout
        self.wall = wall

    def unit(self, index: int) -> str:
        m = len(self.layout.units)
        if 0 <= index < m:
            return self.layout.units[index]
        return self.wall if index == m else _noise(index)

    def units(self, start: int, count: int) -> list[str]:
        m = len(self.layout.units)
        if start >= 0 and start + count <= m:
            return self.layout.units[start : start + count]
        if start >= 0:  # the layout's tail, the wall, then noise
            tail = [*self.layout.units[start:], self.wall] if start <= m else []
            return tail + [_noise(i) for i in range(max(start, m + 1), start + count)]
        return [self.unit(i) for i in range(start, start + count)]

    def _places(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's corpus (0 the essays, 1 the noise, -1 neither: a label's unit or the wall) and its
        sentence there."""
        index = np.arange(start, start + count)
        m = len(self.layout.units)
        noise = (index < 0) | (index > m)
        kind = np.where(noise, 1, -1)
        place = np.where(noise, index % len(corpus("noise").sentences), -1)
        inside = np.flatnonzero((index >= 0) & (index < m))
        sentence = self.layout.places[index[inside]]
        kind[inside] = np.where(sentence >= 0, 0, -1)
        place[inside] = sentence
        return kind, place

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        kind, place = self._places(start, count)
        out = np.empty(count, dtype=np.int64)
        for which, name in enumerate(("essay", "noise")):
            chosen = kind == which
            if chosen.any():
                sentences = corpus(name)
                out[chosen] = sentences.counts(backend, 0, len(sentences.sentences))[place[chosen]]
        odd = np.flatnonzero(kind < 0)
        out[odd] = counts_by_text(backend, [self.unit(start + j) for j in odd.tolist()])
        return out

    def knows_joins(self, backend: Backend) -> bool:
        return True

    def loose_joins(self, backend: Backend, start: int, count: int) -> list[int]:
        if count < 2:
            return []
        kind, place = self._places(start, count)
        # Boundary j lies between units j-1 and j: regular where both are sentences of one corpus, in order.
        loose = np.zeros(count, dtype=bool)
        regular = np.zeros(count, dtype=bool)
        for which, name in enumerate(("essay", "noise")):
            sentences = corpus(name)
            size = len(sentences.sentences)
            # Loose after sentence p: the corpus's boundary p + 1 from its start, the cycle's wrap included.
            after = np.zeros(size, dtype=bool)
            after[np.array(sentences.loose_joins(backend, 0, size + 1), dtype=np.int64) - 1] = True
            pair = (kind[1:] == which) & (kind[:-1] == which) & (place[1:] == (place[:-1] + 1) % size)
            regular[1:] |= pair
            loose[1:] |= pair & after[np.where(pair, place[:-1], 0)]
        odd = np.flatnonzero(~regular[1:]) + 1
        if odd.size:
            alone = self.counts(backend, start, count)
            texts = self.units(start, count)
            together = count_many(backend, [texts[j - 1] + texts[j] for j in odd.tolist()])
            loose[odd] = np.array(together) != alone[odd - 1] + alone[odd]
        return np.flatnonzero(loose).tolist()


@dataclass(frozen=True)
class Reorder(Task):
    """Restore the original order of ``segments`` shuffled segments of consecutive essay sentences.

    The context holds the segments and nothing else: the text starts at the beginning of an essay, as many
    sentences as fill the length are cut into segments of about equal tokens (at least two sentences each),
    and the segments are labelled with random capitals and shuffled. Past the essay the text runs on into the
    next essays, and past the whole corpus (about 17k tokens) it repeats from the start; segment starts are
    kept apart so that each segment's successor is still the one that continues its last sentence.
    """

    name: ClassVar[str] = "reorder"
    description: ClassVar[str] = "put shuffled labelled segments of a text back in their original order"
    metric: ClassVar[str] = "order"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("segments",)

    segments: int = 6
    max_new_tokens: int = 64

    def cache_token(self) -> str:
        # Joins are told from the corpora's sentence pairs, not from runs of units: the same bytes wherever
        # no run hid two joins whose misses cancelled, which the run check could not see.
        return "corpus-joins-v2"

    @property
    def diffusion(self) -> float:
        # The cues are the seams between segments: unmarked, but each segment is in plain view.
        return round(min(0.7, 0.3 + 0.02 * self.segments), 2)

    @property
    def scope(self) -> float:
        # Every segment's ending and beginning must be read; more segments, more of them.
        return round(min(1.0, 0.85 + 0.01 * self.segments), 2)

    def _question(self) -> tuple[str, str]:
        return (
            "Put the segments back in their original order. Answer with all "
            f"{self.segments} labels in square brackets, the first segment first, separated by spaces.",
            "The original order is:",
        )

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 2 <= self.segments <= len(_LABEL_LETTERS):
            raise UsageError(
                f"{self.label()}: segments={self.segments} must be between 2 and {len(_LABEL_LETTERS)}"
            )
        # Measured from the first essay's start; any start would do for a capacity estimate.
        self._capacity(backend, length, 0)

    def _capacity(self, backend: Backend, length: int, start: int) -> tuple[np.ndarray, int, int]:
        """(cumulative tokens of the sentences from ``start``, prompt tokens without a context, room left
        for the segments); refuses a length that cannot hold two sentences a segment."""
        question, prefix = self._question()
        template = _REORDER_TEMPLATE.format(segments=self.segments)
        empty = prompt_tokens(backend, template, question, prefix, "")
        room = length - self.max_new_tokens - empty - _MARGIN
        span = 64
        while True:
            counts = corpus("essay").counts(backend, start, span)
            if counts.sum() > room or span > 1 << 22:
                break
            span *= 2
        cum = np.concatenate([[0], np.cumsum(counts)])
        # Labels cost a few tokens each; the layout measures them exactly.
        fits = int(np.searchsorted(cum, room - 4 * self.segments, side="right")) - 1
        if fits < 2 * self.segments:
            raise UsageError(
                f"{self.label()}: segments={self.segments} need at least {2 * self.segments} sentences "
                f"(two a segment) but length {length} holds about {max(fits, 0)}; lower segments or raise "
                "the length"
            )
        return cum, empty, room

    def _layout(
        self, backend: Backend, length: int, start: int, labels: list[str], order: list[int]
    ) -> _Layout:
        """Size the segments so that they fill the length: as many sentences as fit, split by tokens.

        Sentence counts alone can be off in place (a SentencePiece tokenizer counts a lone "\n\n" unit one
        token more than it costs after a sentence), so each plan is measured as the fitter will render it and
        the number of sentences moved by the difference until one more sentence would not fit.
        """
        essay = corpus("essay")
        question, prefix = self._question()
        template = _REORDER_TEMPLATE.format(segments=self.segments)
        cum, empty, room = self._capacity(backend, length, start)

        def units_for(m: int) -> tuple[list[str], list[int], int, np.ndarray]:
            bounds = self._bounds(cum, m, start, len(essay.sentences))
            sentences = essay.units(start, m)
            units: list[str] = []
            places: list[np.ndarray] = []
            last = 0
            for p, k in enumerate(order):
                if p == len(order) - 1:
                    last = len(units)
                first, end = bounds[k], bounds[k + 1]
                if first < end:
                    units.append(f"\n\n[{labels[p]}] {sentences[first].lstrip()}")
                    units.extend(sentences[first + 1 : end])
                    places += [
                        np.array([-1]),
                        np.arange(start + first + 1, start + end) % len(essay.sentences),
                    ]
            return units, bounds, last, np.concatenate(places)

        def render(context: str) -> str:
            user = template.format(context=context, question=question)
            return backend.render([{"role": "user", "content": user}], prefix)

        frame = find_frame(render, " " + essay.unit(start).strip() + " ")

        def cost(units: list[str], places: np.ndarray) -> int:
            if frame is None:  # the template does not wrap its content plainly: count the prompt whole
                return prompt_tokens(backend, template, question, prefix, "".join(units).lstrip()) - empty
            # Counted as the fitter counts: cached sentence counts, the few joins that do not add up, the frame.
            source = _LayoutUnits(_Layout(units, [], 0, 0, places), "")
            cum = np.concatenate([[0], np.cumsum(source.counts(backend, 0, len(units)))])
            counter = PieceCounter(
                backend,
                frame,
                cum,
                lambda n: source.loose_joins(backend, 0, n),
                lambda a, b: source.units(a, b - a),
            )
            return counter.count(len(units), {}) - empty

        m = int(np.searchsorted(cum, room - 4 * self.segments, side="right")) - 1
        tried: dict[int, int] = {}
        for _ in range(8):
            m = min(max(m, 2 * self.segments), len(cum) - 2)
            if m in tried:
                break
            units, bounds, last, places = units_for(m)
            tried[m] = used = cost(units, places)
            if used > room:  # drop the sentences that cover the excess
                m = int(np.searchsorted(cum, cum[m] - (used - room), side="left")) - 1
            elif room - used >= cum[m + 1] - cum[m]:  # at least one more sentence fits
                m = int(np.searchsorted(cum, cum[m] + (room - used), side="right")) - 1
            else:
                break
        fitting = [k for k, used in tried.items() if used <= room]
        m = max(fitting) if fitting else min(tried)
        if m < 2 * self.segments:
            raise UsageError(
                f"{self.label()}: segments={self.segments} need at least {2 * self.segments} sentences "
                f"(two a segment) but length {length} holds about {m}; lower segments or raise the length"
            )
        units, bounds, last, places = units_for(m)
        # The unit after the segments must never fit: larger than the gap left (under one sentence) plus
        # whatever the fitter's unit-by-unit counts overstate the real cost by.
        firsts = [units[i] for i in range(len(units)) if units[i].startswith("\n\n[")]
        plain = int(cum[m]) - sum(int(cum[b + 1] - cum[b]) for b in bounds[:-1])
        counted = plain + sum(backend.count_tokens(u) for u in firsts)
        overstated = max(0, counted - tried[m])
        wall = int((cum[1:] - cum[:-1]).max()) * 2 + 16 + overstated
        return _Layout(units, bounds, last, wall, places)

    def _bounds(self, cum: np.ndarray, m: int, start: int, cycle: int) -> list[int]:
        """Segment boundaries over sentences 0..m: about equal tokens, two sentences at least each, and no two
        segments starting on the same corpus sentence (which would make a seam ambiguous once text repeats)."""
        s = self.segments
        bounds = [0]
        taken = {start % cycle}
        for k in range(1, s):
            want = int(cum[m]) * k / s
            b = int(np.searchsorted(cum[: m + 1], want))
            b = min(max(b, bounds[-1] + 2), m - 2 * (s - k))
            while (start + b) % cycle in taken and b < m - 2 * (s - k):
                b += 1
            taken.add((start + b) % cycle)
            bounds.append(b)
        bounds.append(m)
        return bounds

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        labels = rng.sample(_LABEL_LETTERS, self.segments)  # labels[p]: the segment shown p-th
        order = list(range(self.segments))  # order[p]: the original place of the segment shown p-th
        while order == sorted(order):
            rng.shuffle(order)
        start = rng.choice(_essay_starts())
        layout = self._layout(backend, length, start, labels, order)
        m = len(layout.units)
        wall = "".join(corpus("noise").sentences)
        while backend.count_tokens(wall) < layout.wall:
            wall += wall

        gold = tuple(labels[order.index(k)] for k in range(self.segments))
        facts: dict[str, Any] = {"segments": self.segments}

        def answers_after_fit(fitted: FittedContext) -> list[tuple[str, ...]]:
            n = fitted.haystack_units
            if not layout.last_label_unit < n <= m:
                raise UsageError(f"{self.label()}: the segments could not be fitted to length {length}")
            # Where seams cost a token more than counted, the last shown segment may lose its last sentences.
            facts["dropped_sentences"] = m - n
            facts["sentences"] = n
            return [gold]

        question, prefix = self._question()
        return self.make_sample(
            backend,
            length=length,
            depth=None,
            seed=seed,
            template=_REORDER_TEMPLATE.format(segments=self.segments),
            turns=[Turn(question=question, answers=gold, answer_prefix=prefix)],
            source=_LayoutUnits(layout, wall),
            answers_after_fit=answers_after_fit,
            evidence=EVERY_UNIT,  # the order of every segment
            metadata=facts,
        )

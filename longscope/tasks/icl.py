"""Many-label in-context learning: made-up labels, each owning made-up feature words, learnt from demonstrations."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, Needle, corpus, counts_by_text
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

# Real words that carry no label information: every label's inputs draw on the same pool.
FILLER = tuple(sorted(set(NOUNS) | set(ADJECTIVES)))
FEATURES_PER_LABEL = 3
MAX_LABELS = 500
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
# Labels are CVCCVC ("tavrol") and feature words CVCVC ("zimek"): all labels have the same length, so no
# label is a substring of another, and the two kinds can never be confused with each other.
_LABEL_SHAPE = "CVCCVC"
_FEATURE_SHAPE = "CVCVC"
# Demonstrations of the asked label, as the fitter leaves them in the context.
_DEMO = re.compile(r"Input: [^\n]*? Label: (\w+)")

TEMPLATE = (
    "Below are example inputs, each followed by its label. The labels are made-up words, and which label "
    "an input gets follows a rule that the examples show.\n\n{context}\n\n{question}"
)


def _made_up(rng: random.Random, shape: str) -> str:
    return "".join(rng.choice(_CONSONANTS if ch == "C" else _VOWELS) for ch in shape)


def _distinct_words(rng: random.Random, shape: str, count: int, avoid: set[str]) -> list[str]:
    words: list[str] = []
    seen = set(avoid)
    while len(words) < count:
        word = _made_up(rng, shape)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _sentence(rng: random.Random, features: tuple[str, ...] | list[str], k: int) -> tuple[str, list[str]]:
    """A short input: three to five filler words with ``k`` of the label's feature words among them."""
    words, used = _sentence_words(rng, features, k)
    return " ".join(words), used


def _sentence_words(
    rng: random.Random, features: tuple[str, ...] | list[str], k: int
) -> tuple[list[str], list[str]]:
    """``_sentence``'s words before they are joined, and the feature words among them."""
    used = rng.sample(list(features), k)
    words = rng.sample(FILLER, rng.randint(3, 5))
    for word in used:
        words.insert(rng.randint(0, len(words)), word)
    return words, used


@dataclass(frozen=True)
class _Plan:
    """Everything one seed decides: the demonstrations, the asked label and its test input."""

    stream: tuple[str, ...]  # the labels that cycle through the generated demonstrations
    asked: str
    needles: tuple[Needle, ...]
    make: Callable[[int], str]
    pieces: Callable[[int], list[str]]  # a demonstration cut into words and fixed phrases that recur
    unit_counts: Callable[[Backend, int, int], np.ndarray]  # the pieces' counts summed in bulk
    test: str  # the input to label, built from feature words its label's first demonstration shows


@dataclass(frozen=True)
class IclManyLabels(Task):
    """Classify one input among ``labels`` made-up labels, learning the rule from demonstrations alone.

    Each label owns three made-up feature words; an input is a few real filler words plus one or two feature
    words of its label. Demonstrations fill the context, cycling over every label (in a fresh seeded order each
    cycle, so the next label cannot be guessed from the sequence). The test input uses feature words shown in
    the asked label's first demonstration, so one demonstration is enough in principle.
    """

    name: ClassVar[str] = "icl_many_labels"
    description: ClassVar[str] = "label an input with one of many made-up labels learnt from demonstrations"
    metric: ClassVar[str] = "exact_label"
    breakdowns: ClassVar[tuple[str, ...]] = ("label_position", "labels")

    labels: int = 50
    max_new_tokens: int = 16

    def cache_token(self) -> str:
        # Generated units are drawn by numpy in blocks now, not by a generator per unit: other bytes.
        return "block-draws-v2"

    @property
    def diffusion(self) -> float:
        # The rule is never stated and the relevant demonstrations look like all the others; more labels,
        # more look-alikes.
        return round(min(0.9, 0.6 + 0.2 * self.labels / 100), 2)

    @property
    def scope(self) -> float:
        # Every label has to be learnt from demonstrations spread over the whole context.
        return 0.8

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 2 <= self.labels <= MAX_LABELS:
            raise UsageError(f"{self.label()}: labels={self.labels} must be between 2 and {MAX_LABELS}")
        self._check_extra()
        # One demonstration per label must fit: count the request with exactly one cycle of seed 0's
        # demonstrations (build verifies the fitted context of every seed anyway).
        plan = self._plan(self.rng(0), None)
        context = "".join(plan.make(i) for i in range(len(plan.stream)))
        context += "".join(needle.text for needle in plan.needles)
        user = TEMPLATE.format(context=context.lstrip(), question=self._question(plan.test))
        # Other seeds draw other words: keep 5% spare so that check() rather than build() says no.
        need = int(backend.count_tokens(backend.render([{"role": "user", "content": user}], "Label:")) * 1.05)
        budget = length - self.max_new_tokens
        if need > budget:
            raise UsageError(
                f"{self.label()}: labels={self.labels} needs about {need} tokens to show every label once, "
                f"but length {length} leaves {budget} after the output budget; lower labels or raise the length"
            )

    def _check_extra(self) -> None:
        """Checks of the subclasses' own parameters."""

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        plan = self._plan(self.rng(seed), depth)

        def verify(fitted) -> list[tuple[str, ...]]:
            # The gold does not depend on the fit, but the task does: every label must have been shown.
            if fitted.haystack_units < len(plan.stream):
                raise UsageError(
                    f"{self.label()}: labels={self.labels} do not all fit in length {length} "
                    f"({fitted.haystack_units} of {len(plan.stream)} demonstrations); lower labels"
                )
            return [(plan.asked,)]

        sample = self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=self._question(plan.test), answers=(plan.asked,), answer_prefix="Label:")],
            source=GeneratedUnits(
                plan.make, name=self.name, pieces=plan.pieces, unit_counts=plan.unit_counts
            ),
            start=0,
            needles=list(plan.needles),
            answers_after_fit=verify,
            metadata={"labels": self.labels, "asked_label": plan.asked},
            # The asked label's demonstrations: the others teach other labels.
            evidence=lambda fitted: [
                line for line in fitted.context.split("\n") if line.endswith(f" Label: {plan.asked}")
            ],
        )
        meta = {**sample.metadata, **_positions(sample.context, plan.asked)}
        return dataclasses.replace(sample, metadata=meta)

    def _question(self, test: str) -> str:
        return (
            f"Every input above carries one of {self.labels} made-up labels. Label the input below by the same "
            f"rule, answering with the label alone.\n\nInput: {test}."
        )

    def _plan(self, rng: random.Random, depth: float | None) -> _Plan:
        avoid = set(FILLER)
        labels = _distinct_words(rng, _LABEL_SHAPE, self.labels, avoid)
        pool = _distinct_words(rng, _FEATURE_SHAPE, FEATURES_PER_LABEL * self.labels, avoid)
        features = {
            label: tuple(pool[FEATURES_PER_LABEL * j : FEATURES_PER_LABEL * (j + 1)])
            for j, label in enumerate(labels)
        }
        asked = rng.choice(labels)
        # Seeds the demonstrations' draws, so make(i) gives the same demonstration whenever it is called.
        seed = rng.getrandbits(64)
        base = f"{seed:x}"
        stream = self._stream(labels, asked)
        draws = _DemoDraws(seed, [labels.index(label) for label in stream], features, labels)
        noise = corpus("noise")

        def pieces(i: int) -> list[str]:
            # Before the stream: plain filler, never a partial demonstration.
            return [noise.unit(i)] if i < 0 else draws.pieces(i)

        def make(i: int) -> str:
            return noise.unit(i) if i < 0 else draws.text(i)

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            return draws.counts(backend, start, count)

        def demo(label: str, key: str) -> tuple[str, list[str]]:
            # The needles: a handful per sample, each from its own generator.
            r = random.Random(f"{base}-{key}")
            words, used = _sentence_words(r, features[label], r.choice((1, 2)))
            return f"\nInput: {' '.join(words)}. Label: {label}", used

        needles = self._needles(rng, depth, lambda j: demo(asked, f"shot-{j}")[0])

        # The asked label's first demonstration: the first needle, or its place in the first cycle.
        shown = demo(asked, "shot-0")[1] if needles else draws.used(draws.first_of(labels.index(asked)))
        test, _ = _sentence(rng, shown, rng.randint(1, len(shown)))
        return _Plan(tuple(stream), asked, tuple(needles), make, pieces, unit_counts, test)

    def _stream(self, labels: list[str], asked: str) -> list[str]:
        return list(labels)

    def _needles(self, rng: random.Random, depth: float | None, text: Callable[[int], str]) -> list[Needle]:
        return []


@dataclass(frozen=True)
class IclManyLabelsDepth(IclManyLabels):
    """As ``icl_many_labels``, but the asked label's ``shots`` demonstrations sit together at one depth.

    In the plain task every label cycles through the whole context, so where the asked label's demonstrations
    sit hardly varies once a context holds a few cycles. Here the generated demonstrations cycle over the other
    labels, and the asked label's demonstrations are placed, a few hundredths of the context apart, around the
    requested depth (or a depth drawn from the seed), so accuracy can be read against where they are.
    """

    name: ClassVar[str] = "icl_many_labels_depth"
    description: ClassVar[str] = "many made-up labels; the asked label's few demonstrations sit at one depth"
    uses_depth: ClassVar[bool] = True

    shots: int = 3

    @property
    def scope(self) -> float:
        # Only the asked label's few demonstrations are needed, though nothing marks them.
        return round(min(1.0, 0.1 + 0.05 * self.shots), 2)

    def _check_extra(self) -> None:
        if not 1 <= self.shots <= 20:
            raise UsageError(f"{self.label()}: shots={self.shots} must be between 1 and 20")

    def _stream(self, labels: list[str], asked: str) -> list[str]:
        return [label for label in labels if label != asked]

    def _needles(self, rng: random.Random, depth: float | None, text: Callable[[int], str]) -> list[Needle]:
        drawn = rng.random()  # drawn even when a depth is given, so the question is the same at every depth
        centre = drawn if depth is None else depth
        spread = 0.02 * (self.shots - 1)
        low = min(max(0.0, centre - spread / 2), 1.0 - spread)
        # In depth order, so the first needle is the first demonstration in the context.
        return [Needle(text(j), round(min(1.0, max(0.0, low + 0.02 * j)), 4)) for j in range(self.shots)]


def _positions(context: str, asked: str) -> dict[str, object]:
    """Where the asked label's demonstrations ended up, as shares of the context's characters."""
    size = max(1, len(context))
    where = [m.start() / size for m in _DEMO.finditer(context) if m.group(1) == asked]
    if not where:  # cannot happen once verify() passed; kept so metadata is always complete
        return {"label_first_depth": None, "label_position": None, "label_demos": 0}
    mean = sum(where) / len(where)
    bucket = "early" if mean < 1 / 3 else "middle" if mean < 2 / 3 else "late"
    return {"label_first_depth": round(where[0], 4), "label_position": bucket, "label_demos": len(where)}


# Demonstrations drawn together (one generator per block), and label orders drawn together (one per block of
# cycles): seeding a generator per demonstration cost more than the rest of a 128k build.
_BLOCK = 4096
_CYCLES = 64
# A demonstration's input holds three to five filler words and one or two feature words.
_MOST_FILLER = 5
_SLOTS = _MOST_FILLER + 2


class _DemoDraws:
    """One sample's generated demonstrations, drawn by numpy in blocks: the label of each (every label once per
    cycle, in a fresh order each cycle), its feature words (one or two of the label's, distinct, ordered) and
    filler (three to five distinct words), with the feature words inserted one by one at uniform places, as
    ``_sentence_words`` does. Counts are the sums of the words' cached counts."""

    def __init__(self, seed: int, stream: list[int], features: dict[str, tuple[str, ...]], labels: list[str]):
        self.seed = seed
        self.stream = np.array(stream, dtype=np.int64)  # label indices that cycle
        # Every word a demonstration can hold, with its leading space; the last entry pads short inputs.
        self.spaced = (
            [" " + w for w in FILLER] + [" " + w for label in labels for w in features[label]] + [""]
        )
        self.pad = len(self.spaced) - 1
        self.spaced_labels = [" " + label for label in labels]
        self._orders: dict[int, np.ndarray] = {}
        self._blocks: dict[int, _Block] = {}
        self._counts: dict[tuple[str, int], np.ndarray] = {}

    def orders(self, cycle_block: int) -> np.ndarray:
        """Positions in the stream, in each cycle's order, for ``_CYCLES`` cycles."""
        if cycle_block not in self._orders:
            g = np.random.Generator(np.random.PCG64([self.seed, 0, cycle_block]))
            self._orders[cycle_block] = g.random((_CYCLES, len(self.stream))).argsort(axis=1)
        return self._orders[cycle_block]

    def first_of(self, label: int) -> int:
        """The index of the label's demonstration in the first cycle."""
        return int(np.flatnonzero(self.stream[self.orders(0)[0]] == label)[0])

    def block(self, b: int) -> _Block:
        if b not in self._blocks:
            self._blocks[b] = self._draw(b)
        return self._blocks[b]

    def _draw(self, b: int) -> _Block:
        cycle, k_in = np.divmod(np.arange(b * _BLOCK, (b + 1) * _BLOCK), len(self.stream))
        position = np.empty(_BLOCK, dtype=np.int64)
        for cycle_block in np.unique(cycle // _CYCLES).tolist():
            inside = cycle // _CYCLES == cycle_block
            position[inside] = self.orders(cycle_block)[cycle[inside] % _CYCLES, k_in[inside]]
        label = self.stream[position]
        g = np.random.Generator(np.random.PCG64([self.seed, 1, b]))
        k = g.integers(1, 3, size=_BLOCK)
        order = g.random((_BLOCK, FEATURES_PER_LABEL)).argsort(axis=1)
        filler = _distinct_rows(g, len(FILLER), _BLOCK, _MOST_FILLER)
        n = g.integers(3, _MOST_FILLER + 1, size=_BLOCK)
        first_at = g.integers(0, n + 1)
        second_at = g.integers(0, n + 2)
        two = k == 2
        # The second feature word goes in after the first: at or before it, it moves the first one on.
        first_at = np.where(two & (second_at <= first_at), first_at + 1, first_at)
        slots = np.arange(_SLOTS)[None, :]
        is_first = slots == first_at[:, None]
        is_second = two[:, None] & (slots == second_at[:, None])
        free = (slots < (n + k)[:, None]) & ~is_first & ~is_second
        rank = np.clip(np.cumsum(free, axis=1) - 1, 0, _MOST_FILLER - 1)
        feature = len(FILLER) + FEATURES_PER_LABEL * label[:, None] + order[:, :2]
        grid = np.where(free, np.take_along_axis(filler, rank, axis=1), self.pad)
        grid = np.where(is_first, feature[:, :1], grid)
        grid = np.where(is_second, feature[:, 1:2], grid)
        return _Block(label, k, feature, grid, grid.tolist(), label.tolist())

    def text(self, i: int) -> str:
        blk = self.block(i // _BLOCK)
        r = i % _BLOCK
        words = "".join(map(self.spaced.__getitem__, blk.rows[r]))
        # One line per demonstration. The ". Label" seam is one HFTokenizer.count_tokens can split long prompts
        # at (with a memo) for every tokenizer style.
        return f"\nInput:{words}. Label:{self.spaced_labels[blk.labels[r]]}"

    def pieces(self, i: int) -> list[str]:
        blk = self.block(i // _BLOCK)
        r = i % _BLOCK
        words = [self.spaced[j] for j in blk.rows[r] if j != self.pad]
        return ["\nInput:", *words, ".", " Label:", self.spaced_labels[blk.labels[r]]]

    def used(self, i: int) -> list[str]:
        """The feature words of demonstration ``i``, in the order they were inserted."""
        blk = self.block(i // _BLOCK)
        r = i % _BLOCK
        return [self.spaced[j][1:] for j in blk.feature[r, : blk.k[r]].tolist()]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        """Token counts of demonstrations ``start`` .. ``start + count - 1`` (non-negative indices)."""
        parts = []
        for b in range(start // _BLOCK, (start + count - 1) // _BLOCK + 1):
            low, high = max(start, b * _BLOCK) - b * _BLOCK, min(start + count, (b + 1) * _BLOCK) - b * _BLOCK
            parts.append(self._block_counts(backend, b)[low:high])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _block_counts(self, backend: Backend, b: int) -> np.ndarray:
        key = (backend.tokenizer_fingerprint(), b)
        if key not in self._counts:
            words = np.array([*counts_by_text(backend, self.spaced[:-1]), 0], dtype=np.int64)
            fixed = sum(counts_by_text(backend, ["\nInput:", ".", " Label:"]))
            labels = np.array(counts_by_text(backend, self.spaced_labels), dtype=np.int64)
            blk = self.block(b)
            self._counts[key] = words[blk.grid].sum(axis=1) + fixed + labels[blk.label]
        return self._counts[key]


@dataclass(frozen=True)
class _Block:
    label: np.ndarray  # label index per demonstration
    k: np.ndarray  # feature words per demonstration
    feature: np.ndarray  # the vocabulary indices of its first and second feature words
    grid: np.ndarray  # vocabulary indices of its words in order, padded
    rows: list[list[int]]  # grid, as lists (joined per demonstration)
    labels: list[int]


def _distinct_rows(g: np.random.Generator, size: int, rows: int, width: int) -> np.ndarray:
    """``rows`` uniform ordered draws of ``width`` distinct integers below ``size`` (rows with a repeat are
    drawn again, which keeps every distinct draw equally likely)."""
    out = g.integers(size, size=(rows, width))
    while True:
        ordered = np.sort(out, axis=1)
        again = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not again.any():
            return out
        out[again] = g.integers(size, size=(int(again.sum()), width))

"""Many-label in-context learning: made-up labels, each owning made-up feature words, learnt from demonstrations."""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, Needle, corpus
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
            source=GeneratedUnits(plan.make, name=self.name, pieces=plan.pieces),
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
        # Seeds the per-unit randomness, so make(i) gives the same demonstration whenever it is called.
        base = f"{rng.getrandbits(64):x}"
        stream = self._stream(labels, asked)
        orders: dict[int, list[str]] = {}

        def label_at(i: int) -> str:
            cycle, k = divmod(i, len(stream))
            if cycle not in orders:
                order = list(stream)
                random.Random(f"{base}-cycle-{cycle}").shuffle(order)
                orders[cycle] = order
            return orders[cycle][k]

        def demo_pieces(label: str, key: str) -> tuple[list[str], list[str]]:
            """A demonstration cut into pieces that recur (its words, fixed phrases), and its feature words."""
            r = random.Random(f"{base}-{key}")
            words, used = _sentence_words(r, features[label], r.choice((1, 2)))
            # One line per demonstration, "\nInput: w1 w2 w3. Label: label" once joined. The ". Label" seam is
            # one HFTokenizer.count_tokens can split long prompts at (with a memo) for every tokenizer style.
            return ["\nInput:", *(" " + word for word in words), ".", " Label:", " " + label], used

        def demo(label: str, key: str) -> tuple[str, list[str]]:
            parts, used = demo_pieces(label, key)
            return "".join(parts), used

        noise = corpus("noise")

        # Seeding a generator per demonstration is the cost: counting and assembling share one draw.
        @functools.cache
        def pieces(i: int) -> list[str]:
            # Before the stream: plain filler, never a partial demonstration.
            return [noise.unit(i)] if i < 0 else demo_pieces(label_at(i), f"demo-{i}")[0]

        def make(i: int) -> str:
            return "".join(pieces(i))

        needles = self._needles(rng, depth, lambda j: demo(asked, f"shot-{j}")[0])

        # The asked label's first demonstration: the first needle, or its place in the first cycle.
        if needles:
            shown = demo(asked, "shot-0")[1]
        else:
            label_at(0)
            shown = demo(asked, f"demo-{orders[0].index(asked)}")[1]
        test, _ = _sentence(rng, shown, rng.randint(1, len(shown)))
        return _Plan(tuple(stream), asked, tuple(needles), make, pieces, test)

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

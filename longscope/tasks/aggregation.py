"""Aggregation: answers that need the whole context counted, not found: common words, Zipf-frequent words, counts."""

from __future__ import annotations

import functools
import itertools
import random
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import (
    FittedContext,
    GeneratedUnits,
    Needle,
    blocked_counts,
    corpus,
    counts_by_text,
    indexed_counts,
    slot_counts,
)
from longscope.tasks.base import EVERY_UNIT, Task, prompt_tokens
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]
_WORD_SPACE = len(_SYLLABLES) ** 3  # 70**3 = 343,000 six-letter words
# Coprime to 2, 5 and 7 (the prime factors of the space), so i -> (i * _STRIDE + offset) mod space is a
# permutation: fresh rare words never repeat, and consecutive indices do not give similar-looking words.
_STRIDE = 104_729
# A sample reads its words as a run of consecutive places of that enumeration (common words first, then each
# round's rare batch), starting at one of the first _POOL_STARTS places: every sample at 128k draws from the
# same ~41k words, so their token counts are cached once per tokenizer rather than encoded afresh per sample.
_POOL_STARTS = 32_768


def _noise(i: int) -> str:
    # Text before the stream pads the first few tokens: plain filler, never a partial list item.
    return corpus("noise").unit(i)


def _six_letter_word(index: int, offset: int) -> str:
    """The index-th word of a seed-offset enumeration of CVCVCV made-up words: distinct for distinct indices,
    all the same length so that no word is a substring of another (containment scoring stays exact)."""
    return _word_at((index * _STRIDE + offset) % _WORD_SPACE)


def _word_at(k: int) -> str:
    """The k-th CVCVCV word of the made-up word space, in syllable order."""
    n = len(_SYLLABLES)
    return _SYLLABLES[k // (n * n)] + _SYLLABLES[(k // n) % n] + _SYLLABLES[k % n]


@functools.cache
def _word_table() -> tuple[str, ...]:
    """Every word of the made-up space by its place, made once (a lookup is cheaper than building a word)."""
    return tuple(a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES)


def _spaced_word_at(k: int) -> str:
    return " " + _word_at(k)


def _item_head(k: int) -> str:
    return f"\n{k + 1}."


@functools.cache
def _english_fragments() -> frozenset[str]:
    """Every 3-6 letter stretch of the English words the essays and prompts use: a made-up word must not be one,
    or it could be found inside ordinary words of an answer ("ost" in "most") and score by accident."""
    words = set(re.findall(r"[a-z]+", "".join(corpus("essay").sentences).lower()))
    words |= set(re.findall(r"[a-z]+", (_FWE_TEMPLATE + _FWE_QUESTION + _FWE_PREFIX).lower()))
    words |= set("answer answers word words frequent frequently common most often are".split())
    return frozenset(w[i : i + k] for w in words for k in range(3, 7) for i in range(len(w) - k + 1))


def _pronounceable(rng: random.Random) -> str:
    """A made-up 3-6 letter word alternating consonants and vowels, starting with either."""
    size = rng.randint(3, 6)
    first = rng.random() < 0.75
    return "".join(rng.choice(_CONSONANTS if (j % 2 == 0) == first else _VOWELS) for j in range(size))


def _made_up_vocabulary(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct made-up words, none inside another nor inside an English word (so no prior helps)."""
    english = _english_fragments()
    chosen: list[str] = []
    accepted: set[str] = set()
    inside: set[str] = set()  # every stretch of the accepted words
    for _ in range(size * 200):
        word = _pronounceable(rng)
        parts = {word[i:j] for i in range(len(word)) for j in range(i + 1, len(word) + 1)}
        # Not an English stretch, not inside an accepted word, and no accepted word inside it.
        if word in english or word in inside or parts & accepted:
            continue
        chosen.append(word)
        accepted.add(word)
        inside |= parts
        if len(chosen) == size:
            return chosen
    raise UsageError(f"cannot draw {size} distinct made-up words; lower vocabulary")


# ---------------------------------------------------------------------------------------------------------
# common_words


_ITEMS_PER_UNIT = 4
_CWE_TEMPLATE = (
    "Below is a numbered list of made-up words. A few words appear many times; most appear only a few "
    "times. Read the whole list.\n\n{context}\n\n{question}"
)


# (task, tokenizer fingerprint, length) -> common_words' layout: the same for every seed, so probed once.
_LAYOUTS: dict[tuple[Any, str, int], tuple[int, int, int]] = {}


@dataclass(frozen=True)
class CommonWords(Task):
    """Name the ``top`` words that appear most often in a numbered list (RULER's common-words extraction).

    The list is built in rounds: each round holds every common word once and a fresh batch of rare words,
    each repeated ``rare_count`` times, in a shuffled order. However many rounds fit, the common words lead
    the counts evenly. The rounds are sized from the length so that about ``common_count`` of them fill it;
    where the length cannot hold that many, fewer rounds are used (the common words still fill about half the
    list), and the check refuses lengths where too few rounds fit for the common words to stand out.
    The words are a run of a fixed pool of made-up words, from a place the seed picks (as RULER's cwe draws
    from a fixed word list): samples share words, never within one sample a common word and a rare one.
    """

    name: ClassVar[str] = "common_words"
    description: ClassVar[str] = "name the words that appear most often in a long numbered word list"
    metric: ClassVar[str] = "contains_all"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("rounds",)

    top: int = 10
    common_count: int = 30
    rare_count: int = 3
    max_new_tokens: int = 64

    @property
    def diffusion(self) -> float:
        # Nothing is hidden, but nothing is marked either: the common words look like every other word, and a
        # smaller lead over the rare words makes them harder to tell apart.
        return round(min(0.6, 0.25 + 0.15 * self.rare_count / max(self.common_count, 1)), 2)

    @property
    def scope(self) -> float:
        return 0.95

    def _question(self) -> tuple[str, str]:
        if self.top == 1:
            return (
                "Which word appears most often in the list above? Answer with the word only.",
                "The most common word is:",
            )
        return (
            f"Which {self.top} words appear most often in the list above? Answer with the {self.top} words "
            "only, separated by commas.",
            f"The {self.top} most common words are:",
        )

    def cache_token(self) -> str:
        # Samples of the first definition drew their words from anywhere in the space: not to be served again.
        return "word-pool-v2"

    def _layout(self, backend: Backend, length: int) -> tuple[int, int, int]:
        """(rounds, rare words per round, estimated list items) for this length: rounds hold ``top`` common
        words once and the rare batch ``rare_count`` times each, and the rounds together fill the length.
        Worked out once per (task, tokenizer and template, length): every seed shares it."""
        key = (self, backend.tokenizer_fingerprint(), length)
        if key not in _LAYOUTS:
            _LAYOUTS[key] = self._work_out_layout(backend, length)
        return _LAYOUTS[key]

    def _work_out_layout(self, backend: Backend, length: int) -> tuple[int, int, int]:
        question, prefix = self._question()
        room = length - self.max_new_tokens - prompt_tokens(backend, _CWE_TEMPLATE, question, prefix, "")
        # Tokens per list item from a probe of 64 items; numbering grows with the list, so re-probe once with
        # numbers of the size the estimate gives.
        items = 100
        for _ in range(2):
            probe = "".join(f"\n{items // 2 + k}. {_six_letter_word(k, 0)}" for k in range(64))
            per_item = max(1.0, backend.count_tokens(probe) / 64)
            items = max(1, int(0.95 * room / per_item))  # aim a little low: a spare round is harmless
        # Common words fill about half the list where common_count rounds would crowd out the rare words;
        # at the shortest lengths, the fewest rounds that still give the common words a clear lead.
        least = self.rare_count + 2
        rounds = min(self.common_count, items // (2 * self.top))
        if rounds < least:
            need = least * (self.top + self.rare_count)
            if items < need:
                raise UsageError(
                    f"{self.label()}: length {length} holds about {items} list items, too few for top="
                    f"{self.top} common words to appear more often than rare words (rare_count="
                    f"{self.rare_count}): about {need} are needed; lower top or rare_count, or raise the length"
                )
            rounds = least
        batch = max(1, (items // rounds - self.top) // self.rare_count)
        # A run longer than the space would wrap and lay a rare word again in a later round (the fit may take
        # a few percent more items than estimated, and a round cut short still draws its batch).
        laid_rounds = items * 21 // (20 * (self.top + batch * self.rare_count)) + 2
        words = _POOL_STARTS + self.top + batch * laid_rounds
        if words > _WORD_SPACE:
            raise UsageError(
                f"{self.label()}: length {length} needs about {words} distinct made-up words, more than the "
                f"{_WORD_SPACE} there are; raise rare_count or lower the length"
            )
        return rounds, batch, items

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        for field_name in ("top", "common_count", "rare_count"):
            if getattr(self, field_name) < 1:
                raise UsageError(
                    f"{self.label()}: {field_name}={getattr(self, field_name)} must be at least 1"
                )
        if self.common_count < self.rare_count + 2:
            raise UsageError(
                f"{self.label()}: common_count={self.common_count} must be at least rare_count+2="
                f"{self.rare_count + 2}, so the common words still lead when the last round is cut short"
            )
        self._layout(backend, length)

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        # Ordinal j of this sample is the pool's place start + j, i.e. the space's word (j*STRIDE + offset).
        offset = rng.randrange(_POOL_STARTS) * _STRIDE % _WORD_SPACE
        common = [_six_letter_word(k, offset) for k in range(self.top)]  # the same at every length
        base = rng.getrandbits(64)
        _, batch, _ = self._layout(backend, length)  # worked out by check above, read back
        size = self.top + batch * self.rare_count

        laid: list[str] = []  # the list's words so far, a round at a time
        # The same words as places in the word space (what their counts are cached by), a round per array.
        laid_keys: list[np.ndarray] = []
        # A round's word ordinals before shuffling: the common words once, each rare word rare_count times.
        ordinals = np.array(
            [*range(self.top), *(self.top + b for b in range(batch) for _ in range(self.rare_count))]
        )

        def upto(end: int) -> list[str]:
            """The list with at least ``end`` words laid down (each round shuffled from its own seed)."""
            table = _word_table()
            while len(laid) < end:
                r = len(laid) // size
                # Each round in its own order, from the seed and the round alone (numpy's permutation: a Python
                # shuffle of ~800 words per round took a fifth of the build).
                shuffled = np.random.Generator(np.random.PCG64([base, r])).permutation(ordinals)
                shuffled += np.where(shuffled >= self.top, r * batch, 0)  # this round's own rare words
                keys = (shuffled * _STRIDE + offset) % _WORD_SPACE  # as _six_letter_word places them
                laid_keys.append(keys)
                laid.extend([table[k] for k in keys.tolist()])
            return laid

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            # The pieces' counts summed in bulk: item heads and words are each counted once per tokenizer.
            first, end = start * _ITEMS_PER_UNIT, (start + count) * _ITEMS_PER_UNIT
            upto(end)
            keys = np.concatenate(laid_keys[first // size : (end - 1) // size + 1])
            keys = keys[first - (first // size) * size :][: end - first]
            words = indexed_counts(backend, "made-up six-letter words", keys, _spaced_word_at)
            heads = indexed_counts(backend, "numbered item heads", np.arange(first, end), _item_head)
            return (words + heads).reshape(count, _ITEMS_PER_UNIT).sum(axis=1)

        def pieces(i: int) -> list[str]:
            # Numbers and words recur across units and samples: counted once each where they add up.
            if i < 0:
                return [_noise(i)]
            first = i * _ITEMS_PER_UNIT
            words = upto(first + _ITEMS_PER_UNIT)
            cut: list[str] = []
            for k in range(first, first + _ITEMS_PER_UNIT):
                cut += (f"\n{k + 1}.", " " + words[k])
            return cut

        def make(i: int) -> str:
            # A few items per unit: the fitter counts units one by one, and single items make 128k slow.
            if i < 0:
                return _noise(i)
            first = i * _ITEMS_PER_UNIT
            words = upto(first + _ITEMS_PER_UNIT)
            return "".join([f"\n{k + 1}. {words[k]}" for k in range(first, first + _ITEMS_PER_UNIT)])

        facts: dict[str, Any] = {"top": self.top}

        def answers_after_fit(fitted: FittedContext) -> list[tuple[str, ...]]:
            items = fitted.haystack_units * _ITEMS_PER_UNIT
            upto(items)
            places, counts = np.unique(np.concatenate(laid_keys)[:items], return_counts=True)
            # By count, then alphabetically: the space's words sort as their places do (syllables are listed
            # in alphabetical order and every word has three), so the place breaks ties as the word would.
            # Only the top words and the next one are read.
            leading = np.lexsort((places, -counts))[: self.top + 1]
            ranked = [(_word_at(int(places[j])), int(counts[j])) for j in leading]
            # The layout guarantees a clear lead; refuse rather than give an ambiguous gold if it ever fails.
            if len(ranked) <= self.top or ranked[self.top - 1][1] <= ranked[self.top][1]:
                raise UsageError(
                    f"{self.label()}: length {length} fitted too few rounds for the top={self.top} words to "
                    "lead clearly; raise the length"
                )
            # The dict is passed as metadata below; make_sample reads it after the fit.
            facts["rounds"] = items // size
            facts["common_occurrences"] = ranked[self.top - 1][1]
            facts["rare_words"] = len(places) - self.top
            return [tuple(w for w, _ in ranked[: self.top])]

        question, prefix = self._question()
        return self.make_sample(
            backend,
            length=length,
            depth=None,
            seed=seed,
            template=_CWE_TEMPLATE,
            turns=[Turn(question=question, answers=tuple(common), answer_prefix=prefix)],
            source=GeneratedUnits(make, name="common_words", pieces=pieces, unit_counts=unit_counts),
            answers_after_fit=answers_after_fit,
            evidence=EVERY_UNIT,  # a count over every word of the context
            metadata=facts,
        )


# ---------------------------------------------------------------------------------------------------------
# frequent_words


_FWE_TEMPLATE = (
    "Below is a coded text made of invented words. Some words are used far more than others. Keep track "
    "of how often each word appears.\n\n{context}\n\n{question}"
)
_FWE_QUESTION = (
    "Which {top} coded words appear most often in the text above? Answer with the {top} words only, "
    "separated by commas, the most frequent first."
)
_FWE_PREFIX = "The {top} most frequent coded words are:"


_WORDS_PER_UNIT = 8


class _Ambiguous(Exception):
    """The fitted words tie at the cut between the top words and the rest: draw the stream again."""


@dataclass(frozen=True)
class FrequentWords(Task):
    """Name the ``top`` most frequent words of a text whose words are drawn from a Zipf law (RULER's frequent-
    words extraction) over ``vocabulary`` made-up words, so no knowledge of real word frequencies helps.

    The gold is counted on the words that fitted. Where two words tie at the cut between the ``top`` words and
    the rest, the stream is drawn again (up to 20 times), so the gold set is always unambiguous.
    """

    name: ClassVar[str] = "frequent_words"
    description: ClassVar[str] = "name the most frequent words of a Zipf-distributed text of made-up words"
    metric: ClassVar[str] = "contains_all"
    uses_depth: ClassVar[bool] = False

    uncounted: ClassVar[tuple[str, ...]] = ("vocabulary",)  # the words drawn from, not all laid down

    top: int = 3
    alpha: float = 2.0
    vocabulary: int = 500
    max_new_tokens: int = 48

    @property
    def diffusion(self) -> float:
        # A flatter law (smaller alpha) makes the leaders' counts closer to the rest: harder to tell apart.
        return round(min(0.7, 0.2 + 0.2 / max(self.alpha, 0.1)), 2)

    @property
    def scope(self) -> float:
        return 0.95

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.top < 1:
            raise UsageError(f"{self.label()}: top={self.top} must be at least 1")
        if not self.alpha > 0:
            raise UsageError(f"{self.label()}: alpha={self.alpha} must be above 0")
        if self.vocabulary <= self.top:
            raise UsageError(
                f"{self.label()}: vocabulary={self.vocabulary} must be larger than top={self.top}"
            )
        if self.vocabulary > 5000:
            raise UsageError(f"{self.label()}: vocabulary={self.vocabulary} must be at most 5000")

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        rng = self.rng(seed)
        words = _made_up_vocabulary(rng, self.vocabulary)  # rank order: words[0] is the likeliest
        weights = list(itertools.accumulate(1.0 / (k + 1) ** self.alpha for k in range(self.vocabulary)))
        base = rng.getrandbits(64)
        if self.top == 1:
            question = "Which coded word appears most often in the text above? Answer with the word only."
            prefix = "The most frequent coded word is:"
        else:
            question = _FWE_QUESTION.format(top=self.top)
            prefix = _FWE_PREFIX.format(top=self.top)
        for attempt in range(20):
            try:
                return self._fit(backend, length, seed, words, weights, f"{base}-{attempt}", question, prefix)
            except _Ambiguous:
                continue
        raise UsageError(
            f"{self.label()}: at length {length} the top={self.top} words keep tying with the next ones; "
            "raise the length, lower top or raise alpha"
        )

    def _fit(self, backend, length, seed, words, weights, stream, question, prefix) -> Sample:
        block = 64
        total = weights[-1]
        cumulative = np.array(weights)

        drawn: list[str] = []  # the stream's words so far, drawn a block at a time
        ranks: list[int] = []  # the same words as their places in ``words``

        def upto(end: int) -> list[str]:
            """The stream with at least ``end`` words drawn (each block from its own seed, in order)."""
            if len(drawn) >= end:
                return drawn
            uniform: list[float] = []
            for b in range(len(drawn) // block, -(-end // block)):
                draw = random.Random(f"frequent_words-{stream}-{b}").random
                uniform += [draw() for _ in range(block)]
            # searchsorted(side="right") over the same doubles is bisect_right, for all the blocks at once.
            here = np.searchsorted(cumulative, np.array(uniform) * total, side="right").tolist()
            ranks.extend(here)
            drawn.extend(map(words.__getitem__, here))
            return drawn

        # Token counts of "\n", each word bare and each word after a space, per tokenizer; -1 until needed.
        piece_counts: dict[str, np.ndarray] = {}

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            # The pieces' counts summed in bulk from the vocabulary's counts (with and without a space).
            fingerprint = backend.tokenizer_fingerprint()
            if fingerprint not in piece_counts:
                piece_counts.clear()
                piece_counts[fingerprint] = np.full(2 * len(words) + 1, -1, dtype=np.int64)
            known = piece_counts[fingerprint]
            upto((start + count) * _WORDS_PER_UNIT)
            here = np.array(ranks[start * _WORDS_PER_UNIT : (start + count) * _WORDS_PER_UNIT])
            here = here.reshape(count, _WORDS_PER_UNIT)
            # Only the words this stretch uses (a Zipf stream never reaches most of a large vocabulary).
            wanted = np.concatenate([[0], 1 + np.unique(here[:, 0]), 1 + len(words) + np.unique(here)])
            missing = wanted[known[wanted] < 0].tolist()
            if missing:
                texts = ["\n", *words, *(" " + w for w in words)]
                known[missing] = counts_by_text(backend, [texts[j] for j in missing])
            newline, plain, spaced = int(known[0]), known[1 : len(words) + 1], known[len(words) + 1 :]
            # A unit opens a line (newline, bare word) at even indices, else continues it (spaced word).
            opens = (np.arange(start, start + count) % 2) == 0
            head = np.where(opens, newline + plain[here[:, 0]], spaced[here[:, 0]])
            return head + spaced[here[:, 1:]].sum(axis=1)

        def make(i: int) -> str:
            if i < 0:
                return _noise(i)
            # Several words per unit (the fitter counts units one by one); a line break every other unit.
            first = i * _WORDS_PER_UNIT
            words_here = " ".join(upto(first + _WORDS_PER_UNIT)[first : first + _WORDS_PER_UNIT])
            return ("\n" if i % 2 == 0 else " ") + words_here

        def pieces(i: int) -> list[str]:
            # The vocabulary's words, with and without their space, counted once each where they add up.
            if i < 0:
                return [_noise(i)]
            first = i * _WORDS_PER_UNIT
            here = upto(first + _WORDS_PER_UNIT)[first : first + _WORDS_PER_UNIT]
            head = ["\n", here[0]] if i % 2 == 0 else [" " + here[0]]
            return head + [" " + w for w in here[1:]]

        facts: dict[str, Any] = {"top": self.top}

        def answers_after_fit(fitted: FittedContext) -> list[tuple[str, ...]]:
            laid = fitted.haystack_units * _WORDS_PER_UNIT
            upto(laid)
            counts = np.bincount(np.array(ranks[:laid]), minlength=len(words)).tolist()
            ranked = sorted(
                ((words[k], c) for k, c in enumerate(counts) if c), key=lambda kv: (-kv[1], kv[0])
            )
            if len(ranked) <= self.top or ranked[self.top - 1][1] <= ranked[self.top][1]:
                raise _Ambiguous
            facts["top_counts"] = [c for _, c in ranked[: self.top + 1]]
            return [tuple(w for w, _ in ranked[: self.top])]

        return self.make_sample(
            backend,
            length=length,
            depth=None,
            seed=seed,
            template=_FWE_TEMPLATE,
            turns=[Turn(question=question, answers=(), answer_prefix=prefix)],
            source=GeneratedUnits(make, name="frequent_words", pieces=pieces, unit_counts=unit_counts),
            answers_after_fit=answers_after_fit,
            evidence=EVERY_UNIT,  # a count over every word of the context
            metadata=facts,
        )


# ---------------------------------------------------------------------------------------------------------
# count_occurrences


_COUNT_TEMPLATE = (
    "Below are many short sentences about everyday things. Read all of them carefully.\n\n{context}\n\n"
    "{question}"
)
_VERBS = (
    "rests beside", "sits under", "rolls past", "waits near", "leans on", "hides behind", "faces",
    "follows", "lies below", "stands by",
)  # fmt: skip
# Words of the sentence frame, the question and the filler: a target must not be one of them or inside one.
_FRAME_WORDS = frozenset(" ".join(_VERBS).split()) | {"the", "how", "many", "times", "does", "word", "appear"}
_FRAME_WORDS |= {"river", "runs", "wide", "hills", "stay", "quiet", "lamps", "lit", "dusk", "rain", "falls"}
_FRAME_WORDS |= {"road", "morning", "comes", "round", "once", "more"}


def _related(a: str, b: str) -> bool:
    return a in b or b in a


# Sentences whose words count_occurrences draws together (one generator per block).
_BLOCK = 4096


@dataclass(frozen=True)
class CountOccurrences(Task):
    """Count how often one noun occurs among many short sentences built from the same word lists.

    The target's sentences are written like every other sentence and spread at depths drawn from the seed;
    no other sentence uses the target or a word containing it. The count is drawn from the seed between
    ``max_count // 4`` (at least 1) and ``max_count``, so it is the same at every length.
    """

    name: ClassVar[str] = "count_occurrences"
    description: ClassVar[str] = "count how many times a given word occurs among many short sentences"
    metric: ClassVar[str] = "exact_number"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("count",)

    max_count: int = 20
    max_new_tokens: int = 24

    def cache_token(self) -> str:
        # The sentences' words are drawn by numpy blocks now, not a generator per sentence: other bytes.
        return "block-draws-v2"

    @property
    def diffusion(self) -> float:
        # The target's sentences are unmarked and built like all the others.
        return 0.4

    @property
    def scope(self) -> float:
        return 0.9

    def _plan(self, seed: int) -> tuple[str, int, list[Needle], int]:
        rng = self.rng(seed)
        targets = [n for n in NOUNS if not any(_related(n, w) for w in _FRAME_WORDS)]
        target = rng.choice(targets)
        nouns = [n for n in NOUNS if not _related(n, target)]
        adjectives = [a for a in ADJECTIVES if not _related(a, target)]
        count = rng.randint(max(1, self.max_count // 4), self.max_count)
        needles = []
        for _ in range(count):
            other = rng.choice(nouns)
            first, second = (target, other) if rng.random() < 0.5 else (other, target)
            text = f"The {rng.choice(adjectives)} {first} {rng.choice(_VERBS)} the {second}."
            needles.append(Needle(text, round(rng.random(), 4)))
        return target, count, needles, rng.getrandbits(64)

    def _question(self, target: str) -> tuple[str, str]:
        return (
            f'How many times does the word "{target}" appear in the sentences above? Answer with a number.',
            f'The word "{target}" appears',
        )

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.max_count < 1:
            raise UsageError(f"{self.label()}: max_count={self.max_count} must be at least 1")
        # The target's sentences must fit: measure the worst case (max_count of them) on seed 0's plan.
        target, _, needles, _ = self._plan(0)
        question, prefix = self._question(target)
        empty = prompt_tokens(backend, _COUNT_TEMPLATE, question, prefix, "")
        per = prompt_tokens(backend, _COUNT_TEMPLATE, question, prefix, needles[0].text) - empty + 1
        room = length - self.max_new_tokens - empty
        if self.max_count * per > room:
            raise UsageError(
                f"{self.label()}: max_count={self.max_count} target sentences of about {per} tokens do not "
                f"fit at length {length}; at most {max(0, room // per)} fit (lower max_count or raise the length)"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        target, count, needles, base = self._plan(seed)
        nouns = [n for n in NOUNS if not _related(n, target)]
        adjectives = [a for a in ADJECTIVES if not _related(a, target)]

        # Seeding a generator per sentence cost more than the rest of a 128k build: the words of a whole
        # block of sentences are drawn at once, from a generator seeded by the sample and the block.
        words = (np.array(adjectives), np.array(nouns), np.array(_VERBS), np.array(nouns))

        @functools.cache
        def block(b: int) -> tuple[np.ndarray, list[tuple[str, ...]], list[str]]:
            """The block's word places (one row per slot), its sentences' words and its sentences."""
            g = np.random.Generator(np.random.PCG64([base, b]))
            drawn = [g.integers(len(choices), size=_BLOCK) for choices in words]
            columns = [choices[at].tolist() for choices, at in zip(words, drawn, strict=True)]
            rows = list(zip(*columns, strict=True))
            sentences = [f" The {a} {first} {verb} the {second}." for a, first, verb, second in rows]
            return np.stack(drawn), rows, sentences

        def pieces(i: int) -> list[str]:
            # A handful of words and phrases recur in every sentence: counted once each where they add up.
            if i < 0:
                return [_noise(i)]
            adjective, first, verb, second = block(i // _BLOCK)[1][i % _BLOCK]
            return [" The", " " + adjective, " " + first, " " + verb, " the", " " + second, "."]

        def make(i: int) -> str:
            return "".join(pieces(i)) if i < 0 else block(i // _BLOCK)[2][i % _BLOCK]

        spaced = [[" " + word for word in choices.tolist()] for choices in words]

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            """The sums of ``pieces``' counts for units ``start`` on, from the drawn word places."""
            return blocked_counts(
                start,
                count,
                _BLOCK,
                lambda b: slot_counts(backend, (" The", " the", "."), spaced, block(b)[0]),
            )

        question, prefix = self._question(target)
        return self.make_sample(
            backend,
            length=length,
            depth=None,
            seed=seed,
            template=_COUNT_TEMPLATE,
            turns=[Turn(question=question, answers=(str(count),), answer_prefix=prefix)],
            source=GeneratedUnits(make, name="count_occurrences", pieces=pieces, unit_counts=unit_counts),
            needles=needles,
            metadata={"count": count, "target": target},
        )

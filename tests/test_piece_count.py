"""Counting a prompt from cached unit counts: equal to counting it whole, loose joins found, caches per tokenizer."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import shared_tiny_backend

from longscope.haystack import (
    GeneratedUnits,
    Needle,
    _loose_between,
    corpus,
    counts_by_text,
    fit_context,
)
from longscope.piece_count import PieceCounter, find_frame

STYLES = [("chatml", "bytelevel"), ("inst", "metaspace")]


def whole_count(backend, text: str) -> int:
    return len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])


def render_for(backend):
    def render(context: str) -> str:
        user = f"Read this.\n\n{context}\n\nWhat is the secret number?"
        return backend.render([{"role": "user", "content": user}], "The secret number is")

    return render


def prompt_counter(backend, render):
    return lambda context: whole_count(backend, render(context))


@pytest.mark.parametrize("template,style", STYLES)
def test_unit_counts_by_text_equal_direct_encoding_and_are_kept_per_tokenizer(template, style):
    backend = shared_tiny_backend(template, style)
    texts = [" The river runs wide.", "\n\nA new paragraph.", " The river runs wide.", " Odd-word 123."]
    assert counts_by_text(backend, texts) == [whole_count(backend, t) for t in texts]
    other = shared_tiny_backend(*[s for s in STYLES if s != (template, style)][0])
    # The same texts through another tokenizer are counted by that tokenizer, not read from the first's memo.
    assert counts_by_text(other, texts) == [whole_count(other, t) for t in texts]


@pytest.mark.parametrize("template,style", STYLES)
@pytest.mark.parametrize("haystack", ["noise", "essay"])
def test_piece_count_equals_the_whole_prompt_count(template, style, haystack):
    backend = shared_tiny_backend(template, style)
    render = render_for(backend)
    source = corpus(haystack)
    start = 17
    units = source.units(start, 120)
    cum = np.concatenate([[0], np.cumsum(source.counts(backend, start, 120))])
    frame = find_frame(render, " probe text ")
    assert frame is not None
    counter = PieceCounter(
        backend,
        frame,
        cum,
        lambda n: [j for j in source.loose_joins(backend, start, 120) if j < n],
        lambda a, b: source.units(start + a, b - a),
    )
    needle = " The secret number for brave-otter is 4417."
    for n, inserts, prefix in [
        (0, {0: [needle]}, ""),
        (1, {1: [needle]}, ""),
        (40, {0: [needle]}, "tail of a sentence "),
        (57, {20: [needle], 21: [" Another needle."]}, ""),
        (120, {120: [needle], 3: [needle]}, "\n"),
    ]:
        pieces = []
        for j in range(n + 1):
            pieces.extend(inserts.get(j, ()))
            if j < n:
                pieces.append(units[j])
        context = prefix + "".join(pieces).lstrip()
        assert counter.count(n, inserts, prefix) == whole_count(backend, render(context)), (n, prefix)


def test_loose_joins_are_the_pairs_that_do_not_add_up():
    # A metaspace tokenizer joins a sentence's last word with a following "\n\n": essays' paragraph starts.
    backend = shared_tiny_backend("inst", "metaspace")
    essay = corpus("essay")
    loose = essay.loose_joins(backend, 0, 200)
    assert loose, "paragraph starts should not add up under a metaspace tokenizer"
    units = essay.units(0, 200)
    for j in range(1, 200):
        adds_up = whole_count(backend, units[j - 1] + units[j]) == sum(
            whole_count(backend, u) for u in units[j - 1 : j + 1]
        )
        assert (j in loose) == (not adds_up), j
    # The same found in runs over generated units: only the mismatching pairs are reported.
    assert _loose_between(backend, units) == loose


def test_fitting_by_pieces_gives_the_same_context_as_counting_whole():
    for template, style in STYLES:
        backend = shared_tiny_backend(template, style)
        render = render_for(backend)
        needles = [Needle("The secret number for brave-otter is 4417.", 0.4)]
        for source in (corpus("essay"), GeneratedUnits(lambda i: f" Record {i} reads {i * 7 % 13}.")):
            count = prompt_counter(backend, render)
            for target in (300, 1111, 2500):
                plain = fit_context(backend, count, source, needles, target, 5)
                pieced = fit_context(backend, count, source, needles, target, 5, render)
                assert pieced == plain
                assert whole_count(backend, render(pieced.context)) == pieced.prompt_tokens == target


def _numbered_words(i: int) -> list[str]:
    """A numbered list item cut into its number and its word, as common_words cuts its units."""
    word = "".join("bdfgk"[(i * 7 + j) % 5] + "aeiou"[(i + j * 3) % 5] for j in range(3))
    return [f"\n{i + 1}.", " " + word]


@pytest.mark.parametrize("template,style", STYLES)
def test_units_counted_from_their_pieces_fit_the_same_context_as_counting_whole(template, style):
    backend = shared_tiny_backend(template, style)
    render = render_for(backend)
    count = prompt_counter(backend, render)
    pieced = GeneratedUnits(
        lambda i: "".join(_numbered_words(i)), name=f"pieces-{style}", pieces=_numbered_words
    )
    plain = GeneratedUnits(lambda i: "".join(_numbered_words(i)), name=f"plain-{style}")
    # Each unit's count from its pieces is its own count whenever the tokenizer was found to add them up.
    if pieced.pieces_add_up(backend):
        assert pieced.counts(backend, 0, 400).tolist() == [
            whole_count(backend, pieced.unit(i)) for i in range(400)
        ]
        assert pieced.loose_joins(backend, 0, 400) == []
    needles = [Needle("The secret number for brave-otter is 4417.", 0.6)]
    for target in (700, 2300):
        by_pieces = fit_context(backend, count, pieced, needles, target, 0, render)
        whole = fit_context(backend, count, plain, needles, target, 0)
        assert by_pieces == whole
        assert whole_count(backend, render(by_pieces.context)) == by_pieces.prompt_tokens == target


def test_pieces_that_do_not_add_up_are_not_trusted():
    backend = shared_tiny_backend("chatml", "bytelevel")

    # Cut inside a word: a byte-level tokenizer merges across such a cut, so the sum of the pieces is too high.
    def split_word(i: int) -> list[str]:
        return [" understa", f"nding {i}."]

    source = GeneratedUnits(lambda i: "".join(split_word(i)), name="split-inside-words", pieces=split_word)
    assert not source.pieces_add_up(backend)
    assert source.counts(backend, 0, 5).tolist() == [whole_count(backend, source.unit(i)) for i in range(5)]
    # Pieces that do not join into the unit's own text are refused too.
    wrong = GeneratedUnits(
        lambda i: f" Item {i}.", name="pieces-not-the-text", pieces=lambda i: [f" Item {i}"]
    )
    assert not wrong.pieces_add_up(backend)


def _source_of(task, backend, length: int, seed: int, monkeypatch):
    """Build one sample and return the unit source the task fitted it from."""
    from longscope.tasks.base import Task

    seen = {}
    make_sample = Task.make_sample

    def spy(self, backend, **kwargs):
        seen["source"] = kwargs["source"]
        return make_sample(self, backend, **kwargs)

    monkeypatch.setattr(Task, "make_sample", spy)
    sample = task.build(backend, length, None, seed)
    return sample, seen["source"]


@pytest.mark.parametrize("template,style", STYLES)
@pytest.mark.parametrize("spec", ["common_words(top=4,common_count=8,rare_count=2)", "frequent_words"])
def test_word_list_counts_in_bulk_equal_each_unit_and_run_encoded_whole(template, style, spec, monkeypatch):
    from longscope.tasks import make_task

    backend = shared_tiny_backend(template, style)
    sample, source = _source_of(make_task(spec), backend, 3000, 5, monkeypatch)
    assert source.unit_counts is not None
    prompt = backend.render(sample.messages(), sample.turns[0].answer_prefix)
    assert whole_count(backend, prompt) + sample.max_new_tokens == 3000
    # Near the start, and far past the fitted stretch (long item numbers, later rounds and blocks).
    for start in (0, 1, 2500):
        units = source.units(start, 64)
        expected = [whole_count(backend, unit) for unit in units]
        assert source.counts(backend, start, 64).tolist() == expected
        if source.pieces_add_up(backend):
            # The bulk sums are what counting uses: each unit's, and a run's as the sum of its units.
            assert source.unit_counts(backend, start, 64).tolist() == expected
            assert whole_count(backend, "".join(units)) == sum(expected)


def test_a_bulk_count_that_disagrees_with_the_pieces_is_refused():
    backend = shared_tiny_backend("chatml", "bytelevel")

    def off_by_one(backend, start, count):
        return np.array([whole_count(backend, "".join(_numbered_words(start + i))) + 1 for i in range(count)])

    source = GeneratedUnits(
        lambda i: "".join(_numbered_words(i)), name="bulk-off-by-one", pieces=_numbered_words,
        unit_counts=off_by_one,
    )  # fmt: skip
    with pytest.raises(AssertionError, match="bulk unit counts differ"):
        source.counts(backend, 0, 8)


def test_indexed_counts_encode_each_index_once_per_tokenizer():
    from longscope.haystack import forget_counts, indexed_counts

    forget_counts()
    asked: list[int] = []

    def text_of(i: int) -> str:
        asked.append(i)
        return f"\n{i + 1}. item"

    byte_level = shared_tiny_backend("chatml", "bytelevel")
    metaspace = shared_tiny_backend("inst", "metaspace")
    for backend in (byte_level, metaspace):
        got = indexed_counts(backend, "test items", np.array([3, 0, 3, 120]), text_of)
        assert got.tolist() == [whole_count(backend, f"\n{i + 1}. item") for i in (3, 0, 3, 120)]
    assert sorted(asked) == [0, 0, 3, 3, 120, 120]  # each distinct index once per tokenizer
    again = indexed_counts(byte_level, "test items", np.array([120, 7]), text_of)
    assert again.tolist() == [whole_count(byte_level, f"\n{i + 1}. item") for i in (120, 7)]
    assert sorted(asked) == [0, 0, 3, 3, 7, 120, 120]
    forget_counts()
    indexed_counts(byte_level, "test items", np.array([3]), text_of)
    assert asked.count(3) == 3  # counted afresh after the caches are dropped


@pytest.mark.parametrize("template,style", STYLES)
def test_common_words_pool_counts_cached_per_tokenizer_equal_direct_encoding(template, style, monkeypatch):
    from longscope.haystack import forget_counts, indexed_counts
    from longscope.tasks import make_task
    from longscope.tasks.aggregation import _POOL_STARTS, _STRIDE, _SYLLABLES, _WORD_SPACE, _spaced_word_at

    def place_of(word: str) -> int:
        a, b, c = (_SYLLABLES.index(word[i : i + 2]) for i in (0, 2, 4))
        return (a * len(_SYLLABLES) + b) * len(_SYLLABLES) + c

    def never_encoded(i: int) -> str:
        raise AssertionError(f"word {i} was not cached by the build")

    forget_counts()
    backend = shared_tiny_backend(template, style)
    task = make_task("common_words(top=4,common_count=8,rare_count=2)")
    words: set[str] = set()
    for seed in (0, 1):
        sample, source = _source_of(task, backend, 3000, seed, monkeypatch)
        words |= set(re.findall(r"\d+\. ([a-z]{6})(?=\n|$)", sample.context))
    # Where a word's count cannot stand for its share of a unit, units are counted whole and nothing is cached.
    bulk = source.pieces_add_up(backend)
    places = np.array(sorted(place_of(w) for w in words))
    # Every word laid down comes from the pool: a run of the space's stride enumeration that starts early.
    ordinals = places * pow(_STRIDE, -1, _WORD_SPACE) % _WORD_SPACE
    assert ordinals.max() < _POOL_STARTS + 2000
    # What the build cached for them is what encoding each word alone gives.
    cached = indexed_counts(
        backend, "made-up six-letter words", places, never_encoded if bulk else _spaced_word_at
    )
    assert cached.tolist() == [whole_count(backend, " " + w) for w in sorted(words, key=place_of)]
    # And the pool far from any sample's words, counted fresh, equals direct encoding too.
    far = np.arange(_POOL_STARTS - 40, _POOL_STARTS + 40) * _STRIDE % _WORD_SPACE
    got = indexed_counts(backend, "made-up six-letter words", far, _spaced_word_at)
    assert got.tolist() == [whole_count(backend, _spaced_word_at(int(p))) for p in far]

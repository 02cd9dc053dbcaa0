"""The shortcuts that build 128k samples fast give what the slow, whole path gives."""

from __future__ import annotations

import collections
import re
import uuid

import numpy as np
import pytest
from conftest import shared_tiny_backend

from longscope import haystack
from longscope.haystack import FittedContext, GeneratedUnits, Needle
from longscope.tasks import base, make_task
from longscope.tasks import reorder as reorder_module
from longscope.tasks import threading as threading_module
from longscope.tasks.base import Task, _evidence

TOKENIZERS = [("chatml", "bytelevel"), ("inst", "metaspace")]


def _source_of(spec: str, backend, length: int, monkeypatch, seed: int = 2):
    """The unit source a task's build hands to make_sample, and the sample built."""
    seen = {}
    make_sample = Task.make_sample

    def spy(self, backend, **kwargs):
        seen["source"] = kwargs["source"]
        return make_sample(self, backend, **kwargs)

    monkeypatch.setattr(Task, "make_sample", spy)
    task = make_task(spec)
    sample = task.build(backend, length, 0.5 if task.uses_depth else None, seed)
    return seen["source"], sample


def _naive_evidence(texts, context):
    return tuple(dict.fromkeys(t.strip() for t in texts if t.strip() and t.strip() in context))


def test_evidence_found_by_lines_equals_a_search_of_the_context():
    rows = [f"row {i}: {i * 7} apples" for i in range(60)]
    context = "intro line\n" + "\n".join(rows[:50]) + "\ntail with row 55: 385 apples inside"
    texts = [
        *("\n" + row for row in rows),  # 50 whole lines, row 55 inside a longer line, 51-54 and 56-59 absent
        "  row 3: 21 apples  ",  # padded: the same unit once stripped
        "apples\nrow 1",  # spans two lines
        "row 4: 28",  # part of a line
        "   ",  # blank: never evidence
        "\nrow 2: 14 apples",  # a repeat
    ]
    assert len(texts) >= base._LINE_INDEX_FROM
    fitted = FittedContext(context, 0, (), 0)
    found = _evidence(texts, [], fitted)
    assert found == _naive_evidence(texts, context)
    assert "row 55: 385 apples" in found and "row 56: 392 apples" not in found
    assert "apples\nrow 1" in found and "row 4: 28" in found
    # Few texts take the plain search, with the same answer.
    assert _evidence(texts[:5], [], fitted) == _naive_evidence(texts[:5], context)
    needles = [Needle("\nrow 9: 63 apples", 0.5), Needle(" not here", 0.2)]
    assert _evidence(None, needles, fitted) == ("row 9: 63 apples",)


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize(
    "spec",
    [
        "count_occurrences",
        "best_of_n",
        "threading",
        "instruction_exam",
        "instruction_exam(layout=global)",
        "instruction_exam(layout=local)",
    ],
)
def test_bulk_unit_counts_equal_the_pieces_summed(spec, template, style, monkeypatch):
    backend = shared_tiny_backend(template, style)
    source, _ = _source_of(spec, backend, 1500, monkeypatch)
    assert isinstance(source, GeneratedUnits) and source.unit_counts is not None
    # From the start, and across the boundaries of blocks of 1024 and 4096 units (drawn separately).
    for start, count in ((0, 40), (1000, 50), (4096 - 30, 60)):
        indices = range(start, start + count)
        cut = [source.pieces(i) for i in indices]
        assert ["".join(parts) for parts in cut] == [source.unit(i) for i in indices]
        by_pieces = haystack._counts_from_pieces(backend, cut)
        assert source.unit_counts(backend, start, count).tolist() == by_pieces.tolist()
    # Where this tokenizer adds the pieces up, the sums are each unit's whole count too.
    if source.pieces_add_up(backend):
        indices = range(4096 - 30, 4096 + 30)
        whole = haystack.count_many(backend, [source.unit(i) for i in indices])
        assert source.unit_counts(backend, 4096 - 30, 60).tolist() == whole


def test_threading_identifiers_are_version_4_uuids_and_never_a_thread_key():
    g = np.random.Generator(np.random.PCG64([5, 0]))
    drawn = threading_module._identifiers(g, 3000)
    for ident in drawn:
        parsed = uuid.UUID(ident)
        assert str(parsed) == ident and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(drawn)) == len(drawn)
    # Every hex digit outside the fixed version and variant bits is drawn: all 16 values occur at each place.
    assert all(len({ident[p] for ident in drawn}) == 16 for p in (0, 9, 20, 35))
    assert {ident[14] for ident in drawn} == {"4"} and {ident[19] for ident in drawn} == set("89ab")
    keys, values = threading_module._distractor_pairs(11, 3, frozenset())
    assert len(keys) == len(values) == threading_module._BLOCK
    # A drawn identifier that is a thread's is replaced, and nothing else moves.
    taken = frozenset({keys[5], values[7]})
    keys2, values2 = threading_module._distractor_pairs(11, 3, taken)
    assert not taken & (set(keys2) | set(values2))
    assert [k for i, k in enumerate(keys2) if i != 5] == [k for i, k in enumerate(keys) if i != 5]
    assert [v for i, v in enumerate(values2) if i != 7] == [v for i, v in enumerate(values) if i != 7]


def test_best_of_n_filler_records_draw_each_detail_uniformly(monkeypatch):
    from longscope.tasks import best_of_n as bon

    backend = shared_tiny_backend("chatml", "bytelevel")
    source, sample = _source_of("best_of_n", backend, 1500, monkeypatch)
    asked_first = sample.turns[0].question.split('"')[1].split()[0]
    records = [source.unit(i) for i in range(2 * bon._BLOCK)]
    pattern = r"\n(\w+) (\w+) was born in (\d{4}), lives in (\w+) and likes the colour (\w+)\."
    parts = [re.fullmatch(pattern, record).groups() for record in records]
    columns = list(zip(*parts, strict=True))
    lists = (
        [f for f in bon._FIRST_NAMES if f != asked_first],
        bon._SURNAMES,
        [str(y) for y in bon._YEARS],
        bon._CITIES,
        bon._COLOURS,
    )
    for column, allowed in zip(columns, lists, strict=True):
        seen = collections.Counter(column)
        assert set(seen) == set(allowed)  # every value occurs, the asked first name never
        expected = len(column) / len(allowed)
        # Uniform: no value strays from its share by more than 5 standard deviations.
        assert max(abs(n - expected) for n in seen.values()) < 5 * expected**0.5
    assert sample.metadata["realised_tokens"] == 1500


@pytest.mark.parametrize("template,style", TOKENIZERS)
def test_reorder_joins_are_every_pair_that_does_not_add_up(template, style, monkeypatch):
    backend = shared_tiny_backend(template, style)
    source, sample = _source_of("reorder", backend, 3000, monkeypatch)
    n = len(source.layout.units) + 6  # past the segments: the wall and the noise after it
    units = source.units(-3, n + 3)
    assert units == [source.unit(i) for i in range(-3, n)]
    alone = haystack.count_many(backend, units)
    assert source.counts(backend, -3, n + 3).tolist() == alone
    together = haystack.count_many(backend, [a + b for a, b in zip(units, units[1:], strict=False)])
    truth = [j for j in range(1, n + 3) if together[j - 1] != alone[j - 1] + alone[j]]
    assert source.loose_joins(backend, -3, n + 3) == truth
    assert sample.metadata["realised_tokens"] == 3000


@pytest.mark.parametrize("template,style", TOKENIZERS)
def test_reorder_layout_counted_by_pieces_is_the_layout_counted_whole(template, style, monkeypatch):
    backend = shared_tiny_backend(template, style)
    task = make_task("reorder(segments=4)")
    by_pieces = [task.build(backend, length, None, seed) for length in (1500, 3000) for seed in (0, 1)]
    # With no frame to count around, the layout's candidates are counted whole, as before the shortcut.
    monkeypatch.setattr(reorder_module, "find_frame", lambda render, probe: None)
    whole = [task.build(backend, length, None, seed) for length in (1500, 3000) for seed in (0, 1)]
    assert by_pieces == whole


def test_pair_counts_remembered_give_the_same_loose_joins():
    backend = shared_tiny_backend("inst", "metaspace")
    units = list(haystack.corpus("essay").units(0, 300))
    haystack.forget_counts()
    first = haystack._loose_between(backend, units)
    assert haystack._PAIR_COUNTS  # metaspace joins do not all add up: pairs were counted
    assert haystack._loose_between(backend, units) == first
    naive = [
        j
        for j in range(1, len(units))
        if haystack.count_many(backend, [units[j - 1] + units[j]])[0]
        != sum(haystack.count_many(backend, units[j - 1 : j + 1]))
    ]
    assert set(first) <= set(naive)


@pytest.mark.parametrize(
    "spec,token",
    [
        ("threading", "block-draws-v2"),
        ("multi_threading", "block-draws-v2"),
        ("best_of_n", "block-draws-v2"),
        ("reorder", "corpus-joins-v2"),
    ],
)
def test_families_whose_bytes_changed_name_it_and_stay_fixed_by_the_seed(spec, token):
    backend = shared_tiny_backend("chatml", "bytelevel")
    task = make_task(spec)
    # Samples cached before the change are not served as these.
    assert task.cache_token() == token
    samples = [task.build(backend, 1500, None, seed) for seed in (0, 1, 2)]
    assert len({sample.context for sample in samples}) == 3
    assert task.build(backend, 1500, None, 1) == samples[1]
    assert all(sample.metadata["realised_tokens"] == 1500 for sample in samples)

"""Haystack: sentence splitting, exact-length fitting across tokenizers and templates, depth placement."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import UsageError
from longscope.haystack import Needle, corpus, fit_context, split_sentences
from longscope.tasks import make_task

TOKENIZERS = [
    ("chatml", "bytelevel"),
    ("llama3", "bytelevel"),
    ("inst", "metaspace"),
    ("plain", "metaspace"),
]


def test_split_sentences_gives_the_text_back_and_keeps_abbreviations_whole():
    text = (
        "Dr. Smith arrived at noon. He saw e.g. the river! Was it wide? Yes.\n\nA new paragraph starts here."
    )
    units = split_sentences(text)
    assert "".join(units) == text
    assert [u.strip() for u in units] == [
        "Dr. Smith arrived at noon.",
        "He saw e.g. the river!",
        "Was it wide?",
        "Yes.",
        "A new paragraph starts here.",
    ]
    assert units[1].startswith(" ") and units[4].startswith("\n\n")


def test_split_sentences_does_not_split_decimals_or_lowercase_continuations():
    units = split_sentences("It cost 3.5 pounds. Then it rose... and fell. Done.")
    assert [u.strip() for u in units] == ["It cost 3.5 pounds.", "Then it rose... and fell.", "Done."]


def test_builtin_corpora_have_units_and_no_digits():
    essay = corpus("essay")
    assert len(essay.sentences) > 500
    assert not any(ch.isdigit() for unit in essay.sentences for ch in unit)
    assert corpus("noise").sentences
    with pytest.raises(UsageError, match="known corpora"):
        corpus("nope")


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize(
    "task_spec", ["niah", "niah_multikey(haystack=noise)", "niah_multivalue(key_type=uuid)"]
)
def test_whole_request_is_exactly_the_target_length(template, style, task_spec):
    backend = tiny_backend(template, style)
    task = make_task(task_spec)
    for length in (700, 1024, 1500, 2048, 4096):
        for depth in (0.0, 0.5, 1.0):
            sample = task.build(backend, length, depth, seed=3)
            request = sample.request()
            prompt = backend.render(request.messages, request.answer_prefix)
            prompt_tokens = len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            assert prompt_tokens + sample.max_new_tokens == length, (length, depth)
            assert sample.metadata["realised_tokens"] == length
            assert sample.metadata["realised_chars"] == len(prompt)
            assert sample.metadata["target_length"] == length


@pytest.mark.parametrize("template,style", TOKENIZERS[:2])
def test_needle_sits_at_its_depth_on_a_sentence_boundary(template, style):
    backend = tiny_backend(template, style)
    task = make_task("niah")
    for depth in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        sample = task.build(backend, 4096, depth, seed=1)
        needle = re.search(r"The secret number for \S+ is \d+\.", sample.context)
        assert needle is not None
        start = needle.start()
        assert abs(start / len(sample.context) - depth) < 0.03, depth
        assert sample.metadata["needle_depths"][0] == pytest.approx(depth, abs=0.03)
        # On a sentence boundary: the text before ends a sentence (or is empty), the needle ends with one.
        before = sample.context[:start].rstrip()
        assert before == "" or before[-1] in ".!?", before[-30:]
        after = sample.context[needle.end() :]
        assert after == "" or after[0] in " \n"


def test_haystack_has_no_special_tokens_and_special_text_is_refused():
    backend = tiny_backend("chatml")
    sample = make_task("niah").build(backend, 2048, 0.5, seed=0)
    special_ids = set(backend.tokenizer.all_special_ids)
    assert not special_ids & set(backend.encode(sample.context))
    with pytest.raises(UsageError, match="special token"):
        fit_context(backend, lambda c: backend.count_tokens(c), corpus("noise"),
                    [Needle("The secret is <|im_end|> here.", 0.5)], 500, 0)  # fmt: skip


def test_length_too_short_names_the_limit():
    backend = tiny_backend("chatml")
    with pytest.raises(UsageError, match="length too short"):
        make_task("niah_multiquery").build(backend, 200, 0.5, seed=0)


@pytest.mark.parametrize("template,style", TOKENIZERS)
def test_long_contexts_are_exact_too_where_counting_goes_sentence_by_sentence(template, style):
    # Above ~20k characters the backend counts sentence by sentence with a memo; check it against a
    # whole-text count at lengths that take that path.
    backend = tiny_backend(template, style)
    task = make_task("niah_multikey")
    for length in (9000, 16000):
        sample = task.build(backend, length, 0.3, seed=5)
        prompt = backend.render(sample.messages(), sample.turns[0].answer_prefix)
        assert len(prompt) > 20_000
        whole = len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert whole + sample.max_new_tokens == length
        assert backend.count_tokens(prompt) == whole

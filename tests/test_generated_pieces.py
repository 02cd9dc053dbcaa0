"""Counting made-up units from cached piece counts must give the same samples as counting them whole."""

from __future__ import annotations

import functools

import pytest
from conftest import SPECIALS, TEMPLATES, _training_text, shared_tiny_backend

from longscope import haystack
from longscope.backends.hf import HFTokenizer
from longscope.tasks import make_task
from longscope.tasks._pieces import split_at_spaces

LENGTH = 4000
# Each family's spec and the name its unit source checks its pieces under.
FAMILIES = [
    ("db_count", "orders"),
    ("db_lookup", "orders"),
    ("icl_many_labels", "icl_many_labels"),
    ("instruction_exam", "instruction_exam"),
    ("instruction_exam(layout=global)", "instruction_exam"),
    ("threading", "threading"),
    ("ladder_qa", "ladder-documents"),
    ("mrcr", "mrcr"),
    ("span_finding", "span_finding"),
    ("count_occurrences", "count_occurrences"),
    ("best_of_n", "best_of_n"),
    ("instruction_exam(layout=local)", "instruction_exam"),
]


@functools.cache
def digit_tokenizer() -> HFTokenizer:
    """A byte-level BPE that splits numbers into single digits, as SmolLM2's does: order and passage numbers
    and identifiers are cut into pieces that add up only under such a tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<unk>", *SPECIALS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.add_special_tokens({"additional_special_tokens": SPECIALS})
    fast.chat_template = TEMPLATES["chatml"]
    return HFTokenizer(fast, name="tiny-digits", context_window=LENGTH)


def _build(spec: str, backend, seed: int = 1):
    task = make_task(spec)
    return task.build(backend, LENGTH, 0.5 if task.uses_depth else None, seed)


def _whole_length(backend, sample) -> int:
    return len(backend.encode(backend.render(sample.messages(), sample.turns[0].answer_prefix))) + (
        sample.max_new_tokens
    )


@pytest.mark.parametrize("spec,source", FAMILIES)
def test_piece_counts_give_the_sample_whole_counts_give(spec, source, monkeypatch):
    backend = digit_tokenizer()
    haystack.forget_counts()
    shortcut = _build(spec, backend)
    # The shortcut was taken: this tokenizer adds the family's pieces up.
    assert haystack._PIECES_ADD_UP[(backend.tokenizer_fingerprint(), source)] is True
    assert _whole_length(backend, shortcut) == LENGTH
    # Counted unit by unit instead, the fit chooses the same units: the same bytes.
    haystack.forget_counts()
    monkeypatch.setattr(haystack.GeneratedUnits, "pieces_add_up", lambda self, backend: False)
    assert _build(spec, backend) == shortcut


@pytest.mark.parametrize("spec,source", FAMILIES)
def test_metaspace_pieces_are_refused_and_lengths_stay_exact(spec, source):
    # A lone piece gains a prefix space under this tokenizer, so its pieces do not add up: the check must
    # see that, and the sample is counted unit by unit.
    backend = shared_tiny_backend("inst", "metaspace")
    haystack.forget_counts()
    sample = _build(spec, backend)
    assert haystack._PIECES_ADD_UP[(backend.tokenizer_fingerprint(), source)] is False
    assert _whole_length(backend, sample) == LENGTH


def test_digit_pieces_are_refused_where_numbers_merge():
    # The plain byte-level tokenizer merges digits inside a number: "123" + "4567" is not "1234567".
    backend = shared_tiny_backend("chatml", "bytelevel")
    haystack.forget_counts()
    sample = _build("db_count", backend)
    assert haystack._PIECES_ADD_UP[(backend.tokenizer_fingerprint(), "orders")] is False
    assert _whole_length(backend, sample) == LENGTH


@pytest.mark.parametrize(
    "text,pieces",
    [
        ("a b", ["a", " b"]),
        (" a b", [" a", " b"]),
        ("a  b", ["a", " ", " b"]),
        ("\n\nMara Q\nMara was.", ["\n\nMara", " Q\nMara", " was."]),
        ("x", ["x"]),
    ],
)
def test_split_at_spaces(text, pieces):
    assert split_at_spaces(text) == pieces
    assert "".join(pieces) == text

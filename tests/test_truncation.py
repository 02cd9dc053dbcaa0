"""Truncation policies: requests over the window are cut by tokens to fit it exactly, and the cut is recorded."""

from __future__ import annotations

import pytest
from conftest import tiny_backend

from longscope.core import UsageError
from longscope.tasks import make_task
from longscope.truncation import POLICIES, request_tokens, truncate


@pytest.fixture(scope="module")
def built():
    backend = tiny_backend()
    sample = make_task("niah").build(backend, 1024, 0.5, seed=3)
    return backend, sample


@pytest.mark.parametrize("policy", ["middle", "left", "right"])
def test_a_long_request_is_cut_to_fill_the_window_exactly(built, policy):
    backend, sample = built
    assert request_tokens(backend, sample) == 1024
    cut, record = truncate(backend, sample, 700, policy)
    assert cut is not None and request_tokens(backend, cut) == 700
    assert record["truncation"] == policy and record["truncated_tokens"] >= 324 - 4
    assert (
        cut.metadata["truncation"] == policy
        and cut.metadata["truncated_tokens"] == record["truncated_tokens"]
    )
    assert cut.metadata["truncated_from_tokens"] == 1024 and cut.metadata["realised_tokens"] == 700
    # Everything outside the context is as the task wrote it.
    assert (cut.template, cut.turns, cut.system, cut.max_new_tokens) == (
        sample.template, sample.turns, sample.system, sample.max_new_tokens,
    )  # fmt: skip
    head, tail = sample.context[:150], sample.context[-150:]
    if policy == "middle":
        assert cut.context.startswith(head) and cut.context.endswith(tail)
    elif policy == "left":
        assert cut.context.endswith(tail) and not cut.context.startswith(head)
    else:
        assert cut.context.startswith(head) and not cut.context.endswith(tail)


def test_skip_drops_the_sample_and_says_by_how_much(built):
    backend, sample = built
    cut, record = truncate(backend, sample, 700, "skip")
    assert cut is None and record == {"truncation": "skip", "truncated_tokens": 0, "excess_tokens": 324}


def test_a_request_that_fits_is_left_alone_and_recorded_as_such(built):
    backend, sample = built
    same, record = truncate(backend, sample, 1024, "middle")
    assert same is not None and same.context == sample.context
    assert record == {"truncation": "none", "truncated_tokens": 0}
    # Truncating an already truncated sample again keeps the record of the first cut.
    cut, _ = truncate(backend, sample, 800, "left")
    again, record = truncate(backend, cut, 800, "middle")
    assert again is not None and again.context == cut.context and record["truncation"] == "left"


def test_a_window_smaller_than_the_bare_prompt_skips_whatever_the_policy(built):
    backend, sample = built
    cut, record = truncate(backend, sample, 60, "middle")
    assert cut is None and record["truncation"] == "skip"


def test_unknown_policies_are_usage_errors(built):
    backend, sample = built
    assert POLICIES == ("middle", "left", "right", "skip")
    with pytest.raises(UsageError, match="middle, left, right, skip"):
        truncate(backend, sample, 700, "centre")


def test_a_metaspace_tokenizer_is_cut_cleanly_too():
    backend = tiny_backend("llama3", "metaspace")
    sample = make_task("niah").build(backend, 900, 0.0, seed=1)
    cut, record = truncate(backend, sample, 640, "middle")
    assert cut is not None and request_tokens(backend, cut) <= 640
    assert request_tokens(backend, cut) >= 636 and "\ufffd" not in cut.context
    assert record["truncation"] == "middle"

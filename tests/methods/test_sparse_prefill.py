"""Sparse prefills (a-shape, tri-shape, vertical-slash): each computes exactly the pairs its pattern keeps, block
by block, counts the work it skipped, and is refused on attention it cannot stand in for."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from longscope.core import Capabilities, UsageError
from longscope.methods import make_method
from longscope.methods.kv._sparse_prefill import Tally, dense_causal


def _masked_reference(query, key, value, allowed, scaling):
    """Dense attention of every query head over every key, restricted to ``allowed`` (H or 1, q, n)."""
    groups = query.shape[1] // key.shape[1]
    keys, values = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    scores = torch.matmul(query, keys.transpose(-1, -2)) * scaling
    return torch.matmul(scores.masked_fill(~allowed, float("-inf")).softmax(-1), values)


def _tensors(steps=16, total=16, heads=4, kv_heads=2, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(1, heads, steps, dim, generator=generator)
    key = torch.randn(1, kv_heads, total, dim, generator=generator)
    value = torch.randn(1, kv_heads, total, dim, generator=generator)
    return query, key, value


def test_a_shape_attends_sinks_and_window_only_and_counts_the_gathered_work():
    query, key, value = _tensors()
    method = make_method("a-shape(sinks=1,window=2,block=4)")
    tally = Tally()
    out = method.sparse(query, key, value, 0.5, tally)
    i, j = torch.arange(16)[:, None], torch.arange(16)[None, :]
    allowed = (j <= i) & ((j < 1) | (i - j <= 2))  # the sink, the two keys before and the query's own
    torch.testing.assert_close(out, _masked_reference(query, key, value, allowed[None, None], 0.5))
    # Blocks of 4 gather [0,4) (16 pairs), then the sink and keys [2,8), [6,12), [10,16): 7 keys each (28).
    assert tally.computed == 4 * (16 + 3 * 28)


def test_the_skipped_share_is_against_dense_causal_work():
    from longscope.methods.kv._sparse_prefill import _ACTIVE, _Run, _sparse_attention

    query, key, value = _tensors()
    method = make_method("a-shape(sinks=1,window=2,block=4)")
    tally = Tally()
    token = _ACTIVE.set(_Run(method, tally))
    try:
        _sparse_attention(SimpleNamespace(layer_idx=0), query, key, value, None, scaling=0.5)
    finally:
        _ACTIVE.reset(token)
    assert tally.dense == 4 * 136  # 16 × 17 / 2 causal pairs per head
    assert tally.skipped == pytest.approx(1 - 100 / 136)


def test_a_window_over_the_whole_input_is_dense_attention():
    query, key, value = _tensors(steps=5, total=12)  # a chunk after 7 cached keys
    out = make_method("a-shape(sinks=0,window=1000,block=2)").sparse(query, key, value, 0.3, Tally())
    torch.testing.assert_close(out, dense_causal(query, key, value, 0.3))


def _one_hot_case(total=200, dim=256, target=None, lag=None):
    """Keys are one-hot; each query points strongly at one key: always ``target`` (a column), or the key
    ``lag`` positions back (a diagonal)."""
    keys = torch.eye(dim)[:total][None, None]  # (1, 1, total, dim)
    at = torch.arange(total)
    aim = torch.full_like(at, target) if target is not None else (at - lag).clamp(min=0)
    queries = 30.0 * torch.eye(dim)[aim][None, None]
    return queries, keys


def test_vertical_slash_keeps_the_column_the_last_queries_read():
    queries, keys = _one_hot_case(target=40)
    method = make_method("vertical-slash(vertical=31,slash=100,last_queries=8)")
    columns, diagonals = method.estimate(queries[0], keys[0], 1.0, Tally())
    kept = set(torch.nonzero(columns[0]).flatten().tolist())
    assert kept == set(range(30)) | {40}  # the 30 forced sink columns and the one read
    assert set(torch.nonzero(diagonals[0]).flatten().tolist()) == set(range(100))


def test_vertical_slash_keeps_the_diagonal_the_last_queries_read():
    queries, keys = _one_hot_case(lag=120)
    method = make_method("vertical-slash(vertical=30,slash=101,last_queries=8)")
    columns, diagonals = method.estimate(queries[0], keys[0], 1.0, Tally())
    assert set(torch.nonzero(diagonals[0]).flatten().tolist()) == set(range(100)) | {120}
    assert set(torch.nonzero(columns[0]).flatten().tolist()) == set(range(30))


def test_vertical_slash_computes_exactly_its_pattern():
    query, key, value = _tensors(steps=40, total=40, seed=1)
    method = make_method("vertical-slash(vertical=3,slash=4,block=8,last_queries=4)")
    columns, diagonals = method.estimate(query[0], key[0].repeat_interleave(2, 0), 0.5, Tally())
    i, j = torch.arange(40)[:, None], torch.arange(40)[None, :]
    allowed = (j <= i) & (columns[:, None, :] | diagonals[:, (i - j).clamp(min=0)])
    out = method.sparse(query, key, value, 0.5, Tally())
    torch.testing.assert_close(out, _masked_reference(query, key, value, allowed[None], 0.5))


def _backend_with(config) -> SimpleNamespace:
    return SimpleNamespace(
        capabilities=Capabilities(in_process_model=True), kind="hf", model=SimpleNamespace(config=config)
    )


@pytest.mark.parametrize("name", ["a-shape", "tri-shape", "vertical-slash"])
def test_an_attention_it_cannot_replace_is_refused_in_one_line(name):
    method = make_method(name)
    with pytest.raises(UsageError, match="flex_attention.*sdpa or eager") as caught:
        method.check_backend(_backend_with(SimpleNamespace(_attn_implementation="flex_attention")))
    assert "\n" not in str(caught.value)
    sliding = SimpleNamespace(
        _attn_implementation="sdpa", sliding_window=4096, layer_types=["sliding_attention"]
    )
    with pytest.raises(UsageError, match="sliding windows"):
        method.check_backend(_backend_with(sliding))
    method.check_backend(_backend_with(SimpleNamespace(_attn_implementation="sdpa", sliding_window=None)))


def test_bad_pattern_parameters_are_refused():
    for spec in ("a-shape(window=0)", "a-shape(sinks=-1)", "vertical-slash(slash=0)", "tri-shape(block=0)"):
        with pytest.raises(UsageError):
            make_method(spec)

"""int8 / int4 (KIVI): the bytes held, packing, quantisation error, logits and answers, restore, budgets."""

from __future__ import annotations

import functools
import math
import types

import pytest
import torch
from conftest import tiny_backend, tiny_llama, tiny_tokenizer

from longscope.core import GenerationRequest, UsageError
from longscope.methods import make_method
from longscope.methods.kv._quantized_cache import (
    QuantizedKVLayer,
    dequantise_keys,
    dequantise_values,
    pack,
    quantise_keys,
    quantise_values,
    unpack,
    value_group,
)

HEADS, HEAD_DIM = 2, 16  # the tiny Llama's KV heads and head_dim (hidden 64 over 4 query heads)


@functools.cache
def model(dtype: torch.dtype = torch.float32):
    return tiny_llama(tiny_tokenizer(), layers=2).to(dtype)


def token_ids(length: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, len(tiny_tokenizer()), (1, length), generator=generator)


def prefilled(spec: str, context: torch.Tensor, dtype: torch.dtype = torch.float32):
    method = make_method(spec)
    with torch.inference_mode():
        state = method.prefill(model(dtype), context, method.new_cache(model(dtype)))
    return method, state


def logits_after(spec: str, ids: torch.Tensor, context: int) -> torch.Tensor:
    """Logits of the tokens after the context, read over the method's cache at their true positions."""
    method, state = prefilled(spec, ids[:, :context])
    with torch.inference_mode(), method.attending(model(), state):
        out = model()(
            input_ids=ids[:, context:],
            past_key_values=state.cache,
            position_ids=torch.arange(context, ids.shape[1]).unsqueeze(0),
            use_cache=True,
        )
    return out.logits


def expected_bytes(context: int, quantised: int, bits: int, group: int, element: int, layers: int = 2) -> int:
    """KIVI's storage written out: codes, key statistics per (token group, channel), value statistics per
    (token, channel group), and the residual in full precision; keys and values alike, for every layer."""
    residual = context - quantised
    codes = quantised * HEAD_DIM * bits // 8
    key_stats = 2 * math.ceil(quantised / group) * HEAD_DIM * element
    value_stats = 2 * quantised * (HEAD_DIM // value_group(HEAD_DIM, group)) * element
    full = 2 * residual * HEAD_DIM * element
    return layers * HEADS * (2 * codes + key_stats + value_stats + full)


def quantised_layers(state) -> list[QuantizedKVLayer]:
    layers = [layer for layer in state.cache.layers if isinstance(layer, QuantizedKVLayer)]
    assert len(layers) == len(state.cache.layers)
    return layers


# -- the bytes held --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("name", "bits"), [("int8", 8), ("int4", 4)])
def test_bytes_claimed_are_the_bytes_stored_and_the_formula(name, bits, dtype):
    context, budget, group = 100, 10, 32  # 90 quantised tokens: two whole key groups and a short one
    method, state = prefilled(f"{name}:budget={budget}", token_ids(context), dtype)
    stored = [t for layer in quantised_layers(state) for t in layer.stored_tensors().values()]
    assert len(stored) == 2 * 8  # codes, scale, zero for keys and values, and the two residual tensors
    actual = sum(t.numel() * t.element_size() for t in stored)
    element = torch.tensor([], dtype=dtype).element_size()
    assert (
        method.held_bytes(state) == actual == expected_bytes(context, context - budget, bits, group, element)
    )
    # Each tensor is its own compact copy: no larger storage hides behind a slice.
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in stored)
    codes = [
        t for layer in quantised_layers(state) for k, t in layer.stored_tensors().items() if "codes" in k
    ]
    assert all(t.dtype == torch.uint8 for t in codes)
    assert all(t.dtype == dtype for layer in quantised_layers(state) for t in (layer.keys, layer.values))
    full_bytes = 2 * 2 * HEADS * context * HEAD_DIM * element
    assert actual < full_bytes


def test_int4_codes_are_packed_two_per_byte():
    context, budget = 80, 16
    _, state = prefilled(f"int4:budget={budget}", token_ids(context))
    for layer in quantised_layers(state):
        for q in (layer.quantised_keys, layer.quantised_values):
            assert q.codes.dtype == torch.uint8
            assert q.codes.shape == (1, HEADS, context - budget, HEAD_DIM // 2)
            assert int(unpack(q.codes, 4).max()) <= 15
    codes = torch.randint(0, 16, (3, 2, 5, 8), dtype=torch.uint8)
    assert torch.equal(unpack(pack(codes, 4), 4), codes)
    assert pack(codes, 4).numel() * 2 == codes.numel()


def test_session_reports_quantised_bytes_and_removes_nothing():
    backend = tiny_backend()
    request = short_request("what is red?")
    full = backend.session(make_method("full")).ask(request)
    session = backend.session(make_method("int4:budget=8"))
    answer = session.ask(request)
    assert answer.kv_removed == 0 and answer.kv_masked == 0
    assert answer.kv_entries == full.kv_entries
    assert answer.kv_bytes < full.kv_bytes / 2


# -- quantisation error ----------------------------------------------------------------------------------


def outlier_keys() -> torch.Tensor:
    """Keys whose channel 3 is a hundred times larger than the rest, as KIVI observes in real models."""
    keys = torch.randn(1, 2, 64, HEAD_DIM, generator=torch.Generator().manual_seed(0))
    keys[..., 3] *= 100.0
    return keys


@pytest.mark.parametrize("bits", [8, 4])
def test_keys_per_channel_error_stays_within_half_a_step_of_each_channel(bits):
    keys, group = outlier_keys(), 16
    restored = dequantise_keys(quantise_keys(keys, bits, group, torch.float32), bits, group, torch.float32)
    grouped = keys.unflatten(-2, (4, group))
    spread = (grouped.amax(dim=-2) - grouped.amin(dim=-2)).repeat_interleave(group, dim=-2)
    step = spread / (2**bits - 1)
    assert ((restored - keys).abs() <= step / 2 + 1e-5).all()
    # The outlier channel does not spoil the others ...
    normal = [c for c in range(HEAD_DIM) if c != 3]
    error = (restored - keys)[..., normal].abs().max()
    assert error <= keys[..., normal].abs().max() * (0.01 if bits == 8 else 0.1)
    # ... which it would if keys were quantised per token, as values are.
    per_token = dequantise_values(quantise_values(keys, bits, group, torch.float32), bits, torch.float32)
    assert (per_token - keys)[..., normal].abs().max() > 5 * error


@pytest.mark.parametrize("bits", [8, 4])
def test_values_per_token_error_stays_within_half_a_step_of_each_group(bits):
    values = torch.randn(1, 2, 40, 32, generator=torch.Generator().manual_seed(1))
    values[..., 7, :] *= 100.0  # one loud token: per-token statistics keep it to itself
    group = 16
    restored = dequantise_values(quantise_values(values, bits, group, torch.float32), bits, torch.float32)
    grouped = values.unflatten(-1, (2, group))
    spread = (grouped.amax(dim=-1, keepdim=True) - grouped.amin(dim=-1, keepdim=True)).expand_as(grouped)
    step = (spread / (2**bits - 1)).flatten(-2)
    assert ((restored - values).abs() <= step / 2 + 1e-5).all()
    quiet = [t for t in range(40) if t != 7]
    assert (restored - values)[..., quiet, :].abs().max() <= values[..., quiet, :].abs().max() * 0.1


def test_a_constant_group_comes_back_exactly():
    keys = torch.full((1, 1, 8, 4), 0.25)
    restored = dequantise_keys(quantise_keys(keys, 4, 4, torch.float32), 4, 4, torch.float32)
    assert torch.equal(restored, keys)


# -- what the model sees ---------------------------------------------------------------------------------


def test_ratio_zero_is_the_full_cache():
    ids, context = token_ids(120), 100
    torch.testing.assert_close(logits_after("int8:0", ids, context), logits_after("full", ids, context))
    torch.testing.assert_close(logits_after("int4:0", ids, context), logits_after("full", ids, context))


def test_int8_logits_close_to_full_and_int4_further_off_but_finite():
    """int8 rounds each element by at most 1/510 of its group's range (int4: 1/30); through the tiny model's
    two layers that moves the logits (std ≈ 0.16) by about 4e-4 at most. A tolerance of 2e-3 leaves five
    times that margin and is still tighter than what int4's 17-fold coarser step does, so the two are told
    apart: int4 must fall outside it."""
    ids, context = token_ids(300), 260
    full = logits_after("full", ids, context)
    int8 = logits_after("int8:budget=4", ids, context)
    int4 = logits_after("int4:budget=4", ids, context)
    torch.testing.assert_close(int8, full, atol=2e-3, rtol=0)
    assert torch.isfinite(int4).all()
    assert (int4 - full).abs().max() > 2e-3
    assert (int4 - full).abs().max() > 4 * (int8 - full).abs().max()


def short_request(question: str) -> GenerationRequest:
    context = "The quick brown fox jumps over the lazy dog near the old mill. " * 8
    return GenerationRequest(
        messages=[{"role": "user", "content": f"Context: {context}\nQuestion: {question}"}],
        max_new_tokens=8,
        context=context,
    )


def test_int8_greedy_answer_equals_full():
    backend = tiny_backend()
    request = short_request("what is red?")
    session = backend.session(make_method("int8:budget=8"))
    answer = session.ask(request)
    assert session.state.extra["quantised_tokens"] > 64  # the context is really quantised
    assert answer.text == backend.generate(request).text
    assert answer.output_tokens == 8


# -- cutting back after a question -----------------------------------------------------------------------


def snapshot(state) -> list[dict[str, torch.Tensor]]:
    return [dict(layer.stored_tensors()) for layer in quantised_layers(state)]


def assert_same_tensors(before, after, *, identical: bool) -> None:
    for old, new in zip(before, after, strict=True):
        assert old.keys() == new.keys()
        for name in old:
            assert torch.equal(old[name], new[name]), name
            if identical and "residual" not in name:
                assert old[name] is new[name], name  # the quantised part is never rebuilt


def test_multi_request_restore_leaves_the_quantised_cache_unchanged():
    backend = tiny_backend()
    # Groups of one token: nothing but the hold would stop a question from being quantised as it arrives.
    session = backend.session(make_method("int8(group_size=1):budget=8"))
    session.ask(short_request("what is red?"))
    state = session.state
    context = state.context_tokens
    before = [{k: t.clone() for k, t in layer.items()} for layer in snapshot(state)]
    objects = snapshot(state)
    for question in ("what is blue?", "which animal jumps over the dog near the mill?"):
        session.ask(short_request(question))
        assert session.state is state  # the context was reused, not prefilled again
        assert all(layer.get_seq_length() == context for layer in quantised_layers(state))
        assert all(layer.residual_tokens == 8 for layer in quantised_layers(state))
        assert_same_tensors(before, snapshot(state), identical=False)
        assert_same_tensors(objects, snapshot(state), identical=True)


def test_multi_turn_keeps_the_conversation_in_full_precision():
    backend = tiny_backend()
    method = make_method("int4(group_size=1):budget=8")
    session = backend.session(method)
    session.ask(short_request("what is red?"), keep="prompt")
    state = session.state
    quantised = state.extra["quantised_tokens"]
    for layer in quantised_layers(state):
        assert layer.quantised_length == quantised  # the question stayed out of the quantised part
        assert layer.residual_tokens == layer.get_seq_length() - quantised > 8
    method.drop_last(state, 3)
    assert all(
        layer.residual_tokens == len(session.logical) - quantised - 3 for layer in quantised_layers(state)
    )
    method.restore(state)
    assert [layer.get_seq_length() for layer in state.cache.layers] == state.layer_lengths


def test_crop_into_the_quantised_part_keeps_the_surviving_tokens():
    _, state = prefilled("int8:budget=10", token_ids(100))
    layer = quantised_layers(state)[0]
    keys, values = layer.dequantised()
    layer.crop(50)  # inside the second key group of 32
    assert layer.quantised_length == 50 and layer.residual_tokens == 0
    assert layer.quantised_keys.scale.shape[-2] == 2
    again_keys, again_values = layer.dequantised()
    assert torch.equal(again_keys, keys[..., :50, :]) and torch.equal(again_values, values[..., :50, :])
    step = torch.randn(1, HEADS, 1, HEAD_DIM)
    returned, _ = layer.update(step, step)
    assert returned.shape[-2] == 51 and layer.quantised_length == 50  # later tokens stay exact


def test_the_layer_alone_streams_whole_groups_and_keeps_the_residual():
    layer = QuantizedKVLayer(bits=8, group_size=4, residual_length=8)
    generator = torch.Generator().manual_seed(2)
    fed = []
    for _ in range(30):
        token = torch.randn(1, HEADS, 1, HEAD_DIM, generator=generator)
        fed.append(token)
        keys, _ = layer.update(token, token)
        assert torch.equal(keys[..., -1:, :], token)  # the step's own token attends exactly
        assert layer.quantised_length % 4 == 0
        assert 8 <= layer.residual_tokens < 12 or layer.quantised_length == 0
    everything = torch.cat(fed, dim=-2)
    assert layer.quantised_length == 20 and layer.get_seq_length() == 30
    keys, values = layer.dequantised()
    torch.testing.assert_close(keys, everything[..., :20, :], atol=0.05, rtol=0)
    assert torch.equal(layer.keys, everything[..., 20:, :])


# -- budgets, ratios and bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "exact"), [("int8:budget=37", 37), ("int4:budget=1", 1), ("int8:0.5", 50)])
def test_budget_or_ratio_fixes_the_tokens_kept_in_full_precision(spec, exact):
    context = 100
    method, state = prefilled(spec, token_ids(context))
    assert method.full_precision(context) == exact
    for layer in quantised_layers(state):
        assert layer.residual_tokens == exact
        assert layer.quantised_length == context - exact
        assert layer.get_seq_length() == context
    assert state.layer_lengths == [context, context]
    assert method.kept(context) == context  # nothing is removed


def test_default_keeps_kivis_residual_of_128():
    method = make_method("int8")
    assert method.full_precision(1000) == 128 and method.full_precision(50) == 50
    assert make_method("int4(group_size=64)").group_size == 64


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(UsageError, match="group_size must be at least 1"):
        make_method("int8(group_size=0)")
    with pytest.raises(UsageError, match="budget 200 is larger than the context"):
        make_method("int8:budget=200").check_context(100, "s1")
    with pytest.raises(UsageError, match="unknown parameter 'bits'"):
        make_method("int8(bits=2)")
    odd = types.SimpleNamespace(
        config=types.SimpleNamespace(head_dim=15, hidden_size=60, num_attention_heads=4)
    )
    with pytest.raises(UsageError, match="even head_dim"):
        make_method("int4").new_cache(odd)


@pytest.mark.parametrize("bits", [8, 4])
def test_statistics_rounded_to_bf16_still_cover_every_element(bits):
    """A bf16 zero point may round above a group's minimum (and zero + levels × scale below its maximum); the
    stored statistics are nudged outward so the grid spans every element and nothing is clipped."""
    keys = (outlier_keys() + 37.0).to(torch.bfloat16)  # an offset makes the minimum's rounding matter
    group, levels = 16, 2**bits - 1
    q = quantise_keys(keys, bits, group, torch.bfloat16)
    assert q.scale.dtype == q.zero.dtype == torch.bfloat16
    grouped = keys.float().unflatten(-2, (4, group))
    assert (q.zero.float() <= grouped.amin(dim=-2)).all()
    assert (q.zero.float() + levels * q.scale.float() >= grouped.amax(dim=-2)).all()
    restored = dequantise_keys(q, bits, group, torch.bfloat16).float()
    half_step = q.scale.float().repeat_interleave(group, dim=-2) / 2
    assert ((restored - keys.float()).abs() <= half_step + keys.float().abs() * 2**-8).all()
    q = quantise_values(keys, bits, group, torch.bfloat16)  # one channel group per token (head_dim 16)
    assert (q.zero.float() <= keys.float().amin(dim=-1, keepdim=True)).all()
    assert (q.zero.float() + levels * q.scale.float() >= keys.float().amax(dim=-1, keepdim=True)).all()

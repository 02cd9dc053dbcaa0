"""Λ-shaped attention (``lambda``): bounded cache, full attention when nothing is removed, agreement with a
hand-written Λ attention with capped sink distances, inputs past the trained window, restore and refusals."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_llama, tiny_tokenizer

from longscope.backends.hf import HFBackend
from longscope.core import GenerationRequest, UsageError
from longscope.methods import make_method
from longscope.methods.kv import lambda_shaped

CONTEXT = "The quick brown fox jumps over the lazy dog while the old owl counts the silver stars. " * 16


def llama(*, layers: int = 2, trained: int = 8192, seed: int = 0, sharpness: float = 1.0, rope=None):
    """A tiny random Llama whose trained window (max_position_embeddings) can be made small; ``sharpness``
    scales the query and key projections so attention is far from uniform and positions change the logits."""
    shape = {"rope_parameters": rope} if rope else {}
    model = tiny_llama(tiny_tokenizer(), layers=layers, seed=seed, max_position_embeddings=trained, **shape)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(sharpness)
            layer.self_attn.k_proj.weight.mul_(sharpness)
    return model


def token_ids(count: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(10, 600, (1, count), generator=generator)


@torch.no_grad()
def lambda_logits(model, method, ids: torch.Tensor, context: int, block: int) -> torch.Tensor:
    """Prefill ``context`` tokens through the method, then run ``block`` tokens at once (a question) and the
    rest one at a time (decoding); the logits of every token after the context."""
    state = method.prefill(model, ids[:, :context], method.new_cache(model))
    logits = []
    with method.attending(model, state):
        for start, end in [(context, context + block)] + [
            (t, t + 1) for t in range(context + block, ids.shape[1])
        ]:
            out = model(
                input_ids=ids[:, start:end],
                past_key_values=state.cache,
                position_ids=torch.arange(start, end).unsqueeze(0),
                use_cache=True,
            )
            logits.append(out.logits)
    return torch.cat(logits, dim=1)


@torch.no_grad()
def reference_logits(
    model, ids: torch.Tensor, *, sinks: int, window: int, cap: int, frequencies=None, rope_scale: float = 1.0
) -> torch.Tensor:
    """Attention over the whole sequence at once, written out: unrotated q and k, each (query, key) pair rotated
    by its own relative distance as a complex phase, the sink distances clamped at ``cap``, an explicit Λ mask.
    Plain RoPE frequencies from the config unless given; ``rope_scale`` multiplies q and k (as YaRN's does)."""
    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    dim = config.hidden_size // heads
    half = dim // 2
    if frequencies is None:
        theta = config.rope_parameters["rope_theta"]
        frequencies = 1.0 / theta ** (torch.arange(half, dtype=torch.float64) * 2 / dim)
    steps = ids.shape[1]
    query_at = torch.arange(steps)[:, None]
    key_at = torch.arange(steps)[None, :]
    distance = query_at - key_at
    sink = key_at < sinks
    distance_seen = torch.where(sink & (distance > cap), torch.full_like(distance, cap), distance)
    allowed = (distance >= 0) & (sink | (distance <= window))
    phase = torch.exp(1j * distance_seen[..., None].double() * frequencies)  # (query, key, half)

    hidden = model.model.embed_tokens(ids)[0]
    for layer in model.model.layers:
        attention = layer.self_attn
        x = layer.input_layernorm(hidden)
        q = attention.q_proj(x).view(steps, heads, dim).double()
        k = attention.k_proj(x).view(steps, kv_heads, dim).double()
        v = attention.v_proj(x).view(steps, kv_heads, dim).double()
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        zq = torch.complex(q[..., :half], q[..., half:])  # rotate_half pairs dimension f with f + dim/2
        zk = torch.complex(k[..., :half], k[..., half:])
        # score(i, j) = Re Σ_f zq_i,f · e^{iθ_f·d(i,j)} · conj(zk_j,f): q rotated by the distance, k at 0
        scores = torch.einsum("ihf,ijf,jhf->hij", zq, phase, zk.conj()).real * rope_scale**2 / dim**0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.einsum("hij,jhd->ihd", scores.softmax(-1), v).reshape(steps, heads * dim).float()
        hidden = hidden + attention.o_proj(out)
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return model.lm_head(model.model.norm(hidden))[None]


# -- the cache holds exactly sinks + window ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kept"),
    [("lambda:budget=40", 40), ("lambda:0.75", 25), ("lambda(sinks=2,chunk=7):0.5", 50), ("lambda:0", 100)],
)
def test_prefill_leaves_sinks_plus_window_in_every_layer(spec, kept):
    model = llama(layers=3)
    method = make_method(spec)
    assert method.kept(100) == kept
    state = method.prefill(model, token_ids(100), method.new_cache(model))
    assert state.layer_lengths == [kept] * 3
    assert [layer.keys.shape[-2] for layer in state.cache.layers] == [kept] * 3
    sinks = method.sinks
    expected = list(range(sinks)) + list(range(100 - (kept - sinks), 100))
    assert all(positions.tolist() == expected for positions in state.extra["positions"])
    assert model.config._attn_implementation == "sdpa"  # switched back after the prefill


def test_the_window_slides_during_the_question_and_stays_bounded():
    model = llama()
    method = make_method("lambda:budget=24")
    state = method.prefill(model, token_ids(60), method.new_cache(model))
    with torch.no_grad(), method.attending(model, state):
        model(
            input_ids=token_ids(9, seed=2),
            past_key_values=state.cache,
            position_ids=torch.arange(60, 69)[None],
        )
    assert [layer.get_seq_length() for layer in state.cache.layers] == [24, 24]
    assert state.extra["positions"][0].tolist() == [0, 1, 2, 3, *range(49, 69)]


# -- nothing removed: full attention ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["lambda:0", "lambda(chunk=16):0", "lambda(chunk=16):budget=70"])
def test_window_over_the_whole_input_gives_full_attention_logits(spec):
    model = llama()
    ids = token_ids(90)
    with torch.no_grad():
        full = model(input_ids=ids).logits[:, 70:]
    got = lambda_logits(model, make_method(spec), ids, context=70, block=8)
    torch.testing.assert_close(got, full)


# -- agreement with a hand-written Λ attention -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "spec", "sinks", "window", "cap"),
    [
        (1, "lambda:budget=24", 4, 20, 20),
        (1, "lambda(cap=8,chunk=7):budget=24", 4, 20, 8),
        (2, "lambda(sinks=3):budget=19", 3, 16, 16),
        (2, "lambda(sinks=2,cap=30,chunk=5):0.6", 2, 26, 30),
    ],
)
def test_chunked_lambda_agrees_with_a_hand_written_reference(layers, spec, sinks, window, cap):
    model = llama(layers=layers, sharpness=6.0)
    ids = token_ids(90)
    method = make_method(spec)
    assert method.kept(70) - method.sinks == window
    got = lambda_logits(model, method, ids, context=70, block=10)
    expected = reference_logits(model, ids, sinks=sinks, window=window, cap=cap)[:, 70:]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # The cap changes these logits (the reference without it is far off), so agreement says something about it.
    uncapped = reference_logits(model, ids, sinks=sinks, window=window, cap=10**6)[:, 70:]
    assert (uncapped - expected).abs().max() > 1e-2


def test_the_cap_rotation_keeps_the_rotary_attention_scaling_once():
    """YaRN scales cos and sin (attention_scaling ≠ 1): post-RoPE q and k carry it already, so re-rotating a
    query must be a pure rotation; applying the scaled cos/sin again would change every capped sink score."""
    rope = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64}
    model = llama(trained=256, sharpness=6.0, rope=rope)
    rotary = model.model.rotary_emb
    assert rotary.attention_scaling > 1.1
    ids = token_ids(90)
    got = lambda_logits(model, make_method("lambda(cap=8):budget=24"), ids, context=70, block=10)
    expected = reference_logits(
        model,
        ids,
        sinks=4,
        window=20,
        cap=8,
        frequencies=rotary.inv_freq.double(),
        rope_scale=rotary.attention_scaling,
    )
    torch.testing.assert_close(got, expected[:, 70:], rtol=1e-4, atol=1e-4)


# -- past the trained window ---------------------------------------------------------------------------------------


def test_an_input_two_and_a_half_times_the_trained_window_runs_with_finite_logits():
    model = llama(trained=256)
    ids = token_ids(640)
    method = make_method("lambda:budget=200")
    got = lambda_logits(model, method, ids, context=600, block=30)
    assert got.shape[1] == 40
    assert torch.isfinite(got).all()


def test_a_session_answers_a_request_longer_than_the_trained_window():
    tokenizer = tiny_tokenizer()
    backend = HFBackend(llama(trained=256), tokenizer, name="tiny-256", revision="test")
    request = GenerationRequest(
        messages=[{"role": "user", "content": f"{CONTEXT}\nWhat does the owl count?"}],
        max_new_tokens=6,
        context=CONTEXT,
    )
    generation = backend.session(make_method("lambda:budget=128")).ask(request)
    assert generation.input_tokens > 2 * 256
    assert generation.output_tokens > 0
    assert generation.kv_entries == 2 * 2 * 128  # layers × KV heads × (sinks + window), after decoding


def test_a_cap_above_the_trained_window_is_refused():
    model = llama(trained=256)
    method = make_method("lambda(cap=300):budget=100")
    with pytest.raises(UsageError, match="trained window of 256"):
        method.prefill(model, token_ids(300), method.new_cache(model))
    backend = HFBackend(model, tiny_tokenizer(), name="tiny-256", revision="test")
    with pytest.raises(UsageError, match="cap 300"):
        method.check_backend(backend)


# -- LM-Infinite's geometry when neither a ratio nor a budget is given ---------------------------------------------


def test_the_default_keeps_what_lm_infinite_attends_past_the_trained_window():
    """n_global = 4 sinks and n_local = 32 = the trained window: the next query reads itself and the 31 keys
    before it, so after a 60-token prefill every layer holds positions 0–3 and 29–59."""
    model = llama(trained=32)
    method = make_method("lambda")
    geometry = method.geometry(model, 60)
    assert (geometry.sinks, geometry.window, geometry.cap) == (4, 31, 32)
    state = method.prefill(model, token_ids(60), method.new_cache(model))
    assert state.layer_lengths == [35, 35]
    assert all(positions.tolist() == [0, 1, 2, 3, *range(29, 60)] for positions in state.extra["positions"])


def test_the_default_past_the_trained_window_agrees_with_lm_infinite_written_out():
    model = llama(trained=32, sharpness=6.0)
    ids = token_ids(90)
    got = lambda_logits(model, make_method("lambda"), ids, context=70, block=10)
    # Local distances 0 … 31, every farther sink scored at distance 32 (LM-Infinite's limit_distance).
    expected = reference_logits(model, ids, sinks=4, window=31, cap=32)[:, 70:]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # Keeping every key (the old default: only the sinks' distance capped) reads otherwise.
    unevicted = reference_logits(model, ids, sinks=4, window=10**6, cap=32)[:, 70:]
    assert (unevicted - expected).abs().max() > 1e-2


def test_the_default_within_the_trained_window_is_full_attention():
    model = llama(trained=96, sharpness=6.0)
    ids = token_ids(90)
    with torch.no_grad():
        full = model(input_ids=ids).logits[:, 70:]
    torch.testing.assert_close(lambda_logits(model, make_method("lambda"), ids, context=70, block=8), full)


# -- the fused path (CPU flash attention + sinks, merged by log-sum-exp) against the eager blocks -------------------


@pytest.mark.parametrize(
    "spec",
    [
        "lambda",
        "lambda:0",
        "lambda(cap=8):budget=24",
        "lambda(sinks=2,chunk=5):0.6",
        "lambda(sinks=0)",
        "lambda:budget=10",
    ],
)
def test_the_fused_path_gives_the_eager_paths_logits(spec, monkeypatch):
    """Past a 32-token window, with eviction and without, 4 query heads over 2 KV heads (GQA). Between them the
    specs reach every way a block is split: the whole band under a mask (the first chunk, whose queries include
    the sinks; a 10-token question wider than a 6-token window), rectangle and causal triangles (later chunks),
    the oldest keys starting inside the mirrored triangle, and no window at all (ratio 0)."""
    model = llama(trained=32, sharpness=6.0)
    ids = token_ids(120)
    monkeypatch.setattr(lambda_shaped, "FUSED_ON_CPU", False)
    eager = lambda_logits(model, make_method(spec), ids, context=100, block=10)
    monkeypatch.setattr(lambda_shaped, "FUSED_ON_CPU", True)

    def no_eager(*args, **kwargs):
        raise AssertionError("the eager path ran on CPU")

    monkeypatch.setattr(lambda_shaped._Run, "attend_eager", no_eager)
    fused = lambda_logits(model, make_method(spec), ids, context=100, block=10)
    torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-4)


# -- sessions: restore and drop_last -----------------------------------------------------------------------------


def test_multi_request_restore_leaves_the_context_cache_identical():
    from conftest import tiny_backend

    backend = tiny_backend()
    method = make_method("lambda:budget=64")
    session = backend.session(method)
    requests = [
        GenerationRequest(
            messages=[{"role": "user", "content": f"{CONTEXT}\nQuestion: what {what}?"}],
            max_new_tokens=5,
            context=CONTEXT,
        )
        for what in ("does the fox jump over", "does the owl count in the sky tonight")
    ]
    first = session.ask(requests[0])
    assert first.kv_removed == (session.state.context_tokens - 64) * 2 * 2
    after_prefill = method.prefill(
        backend.model, torch.tensor([session.prefix]), method.new_cache(backend.model)
    )
    cached = session.state.cache

    def assert_identical():
        for layer, expected in zip(cached.layers, after_prefill.cache.layers, strict=True):
            assert torch.equal(layer.keys, expected.keys) and torch.equal(layer.values, expected.values)
        for positions, expected in zip(
            session.state.extra["positions"], after_prefill.extra["positions"], strict=True
        ):
            assert torch.equal(positions, expected)

    assert_identical()
    second = session.ask(requests[1])
    assert_identical()
    assert second.text == backend.session(make_method("lambda:budget=64")).ask(requests[1]).text


def test_drop_last_crops_the_dropped_positions():
    model = llama()
    method = make_method("lambda:budget=24")
    state = method.prefill(model, token_ids(60), method.new_cache(model))
    with torch.no_grad(), method.attending(model, state):
        model(
            input_ids=token_ids(5, seed=3),
            past_key_values=state.cache,
            position_ids=torch.arange(60, 65)[None],
        )
    keys = state.cache.layers[0].keys.clone()
    method.drop_last(state, 3)
    assert state.extra["positions"][0].tolist() == [0, 1, 2, 3, *range(45, 62)]
    assert torch.equal(state.cache.layers[0].keys, keys[..., :21, :])
    method.drop_last(state, 60)  # past everything the window holds: only the sinks before position 2 remain
    assert [layer.get_seq_length() for layer in state.cache.layers] == [2, 2]
    assert state.extra["positions"][1].tolist() == [0, 1]


def test_the_attention_implementation_is_restored_after_an_error():
    model = llama()
    method = make_method("lambda:budget=24")
    state = method.prefill(model, token_ids(40), method.new_cache(model))
    with pytest.raises(RuntimeError, match="boom"), method.attending(model, state):
        assert model.config._attn_implementation == "longscope_lambda"
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


# -- refusals ----------------------------------------------------------------------------------------------------


def test_a_budget_above_the_context_is_refused():
    model = llama()
    method = make_method("lambda:budget=500")
    with pytest.raises(UsageError, match="budget 500 is larger than the context"):
        method.prefill(model, token_ids(100), method.new_cache(model))


@pytest.mark.parametrize("spec", ["lambda:budget=4", "lambda(sinks=8):budget=6"])
def test_sinks_filling_the_budget_are_refused(spec):
    with pytest.raises(UsageError, match="sinks leave no local window"):
        make_method(spec)


def test_sinks_filling_what_a_ratio_keeps_are_refused():
    model = llama()
    method = make_method("lambda(sinks=60):0.5")
    with pytest.raises(UsageError, match="leaves no local window beside 60 sinks"):
        method.prefill(model, token_ids(100), method.new_cache(model))


@pytest.mark.parametrize("spec", ["lambda(sinks=-1):0.5", "lambda(cap=0):0.5", "lambda(chunk=0):0.5"])
def test_bad_parameters_are_refused(spec):
    with pytest.raises(UsageError, match="method lambda"):
        make_method(spec)


def test_name_label_and_window_extension():
    method = make_method("lambda(sinks=2):budget=1024")
    assert method.label() == "lambda(sinks=2):budget=1024"
    assert method.extends_window
    assert make_method("lambda:0.5").label() == "lambda:0.5"

"""Every registered in-model method through the same checks on a tiny Llama: nothing at ratio 0, the promised
entries kept at ratio 0.5 and at a budget, the shared cache restored after a multi-request question."""

from __future__ import annotations

import functools

import pytest
import torch
from conftest import tiny_llama, tiny_tokenizer

from longscope.core import GenerationRequest, UsageError
from longscope.haystack import corpus
from longscope.methods import METHODS, make_method
from longscope.methods.base import KVMethod, kv_heads

# Methods that compress with the question inside the prefill: they run through their query-aware solver, not a
# bare session over the context (tests/methods/test_query_aware.py checks them against kvpress).
QUERY_AWARE_ONLY = {"finch"}
KV_METHODS = [
    name for name, cls in METHODS.items() if issubclass(cls, KVMethod) and name not in QUERY_AWARE_ONLY
]
# Methods that change how positions are encoded and keep every KV entry: a ratio or budget means nothing to
# them (they refuse one), so the compression checks do not apply; they get the checks below instead.
POSITIONAL = {
    "pi": "divides positions by its factor",
    "ntk": "raises the rotary base",
    "yarn": "interpolates slow rotary frequencies",
    "self-extend": "groups the positions of distant keys",
}
# Sparse prefills compute only part of the prefill's attention and store every entry: no ratio or budget;
# each is given here a pattern that keeps every pair, and one that skips most of them.
SPARSE_PREFILL = {
    "a-shape": ("a-shape(window=100000)", "a-shape(sinks=4,window=16,block=8)"),
    "tri-shape": ("tri-shape(window=100000)", "tri-shape(sinks=4,window=16,block=8)"),
    "vertical-slash": ("vertical-slash(slash=100000)", "vertical-slash(vertical=2,slash=2,block=8,last_queries=8)"),
}  # fmt: skip
COMPRESSING = [name for name in KV_METHODS if name != "full" and name not in POSITIONAL | SPARSE_PREFILL]
# How each method is written on the command line when its bare name is not enough.
SPELLING = {
    "kvpress": "kvpress:KnormPress",
    "leaderboard": "leaderboard:knorm",
    # Blocks small enough for the matrix's short context to hold several of them.
    "longheads": "longheads(sinks=8,block=16,local=16)",
    "infllm": "infllm(sinks=8,block=16,local=16)",
}


def spec(name: str, amount: str = "") -> str:
    spelled = SPELLING.get(name, name)
    if amount.startswith("(") and spelled.endswith(")"):  # more parameters join the spelled ones
        return spelled[:-1] + "," + amount[1:]
    return spelled + amount


# Methods whose accounting is not "exactly n − kept(n) entries removed or masked per layer and KV head", and why.
NOT_EXACT = {
    "pyramidkv": "spreads the budget unevenly over layers (a pyramid); only the total is bounded",
    "squeezed": "keeps whole clusters above a calibrated threshold, so the share attended to is only expected",
    "int8": "quantises: every entry stays, smaller",
    "int4": "quantises: every entry stays, smaller",
    "observed-attention": "kvpress's observed attention may keep a different count per head (eager weights)",
    "longheads": "selects whole chunks per head; an entry is masked only when no head of its group reads it",
    "infllm": "loads whole blocks, so the entries attended are rounded up to the block",
    "lazyllm": "prunes progressively: layers before a pruning stage hold every entry, later ones fewer",
}


@functools.cache
def _backend():
    """A tiny random Llama with 64-wide heads: kvpress's AdaKV masking needs room to find a key that every
    query ignores, which 16-wide heads do not give."""
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, hidden_size=128, intermediate_size=256, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=4096)  # fmt: skip
    return HFBackend(model, tokenizer, name="tiny-llama-wide-heads", revision="test")


def _context() -> str:
    return "".join(corpus("noise").units(0, 14))


def _request(question: str) -> GenerationRequest:
    context = _context()
    return GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\n\nQuestion: {question}"}],
        max_new_tokens=4,
        context=context,
    )


def _context_tokens(session, request) -> int:
    backend = session.backend
    prompt = backend.render(request.messages)
    return session.split(prompt, backend.encode(prompt), request.context)


def _snapshot(cache) -> list[torch.Tensor]:
    """Every tensor a cache layer holds (keys, values, or a quantised layer's codes, scales and residual); not
    a reserved layer's buffers, whose room past the held entries is an answer's scratch."""
    tensors = []
    for layer in cache.layers:
        for name in sorted(n for n in vars(layer) if n not in ("_key_buffer", "_value_buffer")):
            value = getattr(layer, name)
            if isinstance(value, torch.Tensor):
                tensors.append(value.detach().clone())
    return tensors


def test_every_compressing_method_is_in_the_matrix():
    # the methods must all be registered
    for name in ("full", "snapkv", "streaming-llm", "expected-attention", "knorm", "tova", "pyramidkv"):
        assert name in KV_METHODS
    for name in ("squeezed", "lambda", "int8", "int4"):
        assert name in KV_METHODS, f"{name} is not registered"


@pytest.mark.parametrize("name", COMPRESSING)
def test_ratio_zero_gives_the_logits_of_full(name):
    backend = _backend()
    request = _request("Which colour comes first?")
    reference = backend.session(make_method("full")).next_token_logits(request)
    logits = backend.session(make_method(spec(name, ":0"))).next_token_logits(request)
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", COMPRESSING)
@pytest.mark.parametrize("amount", ["ratio", "budget"])
def test_the_promised_entries_are_kept(name, amount):
    backend = _backend()
    request = _request("Which colour comes first?")
    probe = backend.session(make_method("full"))
    n = _context_tokens(probe, request)
    method = make_method(spec(name, ":0.5" if amount == "ratio" else f":budget={n // 3}"))
    session = backend.session(method)
    generation = session.ask(request)
    layers = len(session.state.cache.layers)
    heads = kv_heads(backend.model)
    dropped = (n - method.kept(n)) * layers * heads
    assert generation.kv_removed is not None and generation.kv_masked is not None
    if name in NOT_EXACT:
        if name in ("int8", "int4"):
            assert generation.kv_removed == 0 and generation.kv_masked == 0
        else:
            assert 0 < generation.kv_removed + generation.kv_masked <= n * layers * heads
        return
    assert generation.kv_removed + generation.kv_masked == dropped, (
        f"{method.label()}: {generation.kv_removed} removed + {generation.kv_masked} masked, promised {dropped}"
    )


@pytest.mark.parametrize("name", KV_METHODS)
def test_the_shared_cache_is_restored_after_a_multi_request_question(name):
    backend = _backend()
    if name in SPARSE_PREFILL:
        method = make_method(SPARSE_PREFILL[name][1])
    else:
        method = make_method(name if name == "full" or name in POSITIONAL else spec(name, ":0.5"))
    session = backend.session(method)
    first, second = _request("Which colour comes first?"), _request("Which number is last?")
    answer = session.ask(second).text
    before = _snapshot(session.state.cache)
    session.ask(first)
    after = _snapshot(session.state.cache)
    assert len(before) == len(after)
    if name == "adakv":
        # kvpress writes a query-dependent stand-in key into every masked slot at each step (so that no query
        # attends to it); those slots differ, everything attended to and every value must not.
        before, after = before[1::2], after[1::2]  # keys and values alternate per layer: compare the values
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
    assert session.ask(second).text == answer


@pytest.mark.parametrize("name", COMPRESSING)
def test_bad_amounts_are_refused_in_one_line(name):
    with pytest.raises(UsageError, match=r"outside \[0, 1\)"):
        make_method(spec(name, ":1.5"))
    method = make_method(spec(name, ":budget=100000"))
    with pytest.raises(UsageError, match="larger than the context"):
        method.check_context(500, "sample")
    with pytest.raises(UsageError, match=r"unknown .*'nosuch'"):
        make_method(spec(name, "(nosuch=1):0.5"))


def test_positional_methods_are_registered_and_claim_a_window():
    for name in POSITIONAL:
        assert name in KV_METHODS, f"{name} is not registered"
        method = make_method(name)
        assert method.extends_window and method.extended_window(4096) > 4096


@pytest.mark.parametrize("name", list(POSITIONAL))
def test_positional_methods_keep_every_entry_and_refuse_amounts(name):
    backend = _backend()
    request = _request("Which colour comes first?")
    generation = backend.session(make_method(name)).ask(request)
    assert generation.kv_removed == 0 and generation.kv_masked == 0
    for amount in (":0.5", ":budget=100"):
        with pytest.raises(UsageError, match="keeps every KV entry"):
            make_method(name + amount)


def test_layers_of_different_lengths_are_answered_token_by_token_and_match_full_when_nothing_is_dropped():
    """PyramidKV leaves each layer its own length; one attention mask cannot fit them all, so the question is
    fed a token at a time. On a cache whose layers are even, that path gives the logits of the usual one."""
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, layers=8, hidden_size=128, intermediate_size=256, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=4096)  # fmt: skip
    backend = HFBackend(model, tokenizer, name="tiny-8-layers", revision="test")
    context = "".join(corpus("noise").units(0, 80))  # long enough for PyramidKV's layers to differ
    request = GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\n\nQuestion: which colour?"}],
        max_new_tokens=3,
        context=context,
    )
    session = backend.session(make_method("pyramidkv:0.5"))
    generation = session.ask(request)
    lengths = [layer.get_seq_length() for layer in session.state.cache.layers]
    assert len(set(lengths)) > 1 and generation.output_tokens >= 1

    full = backend.session(make_method("full"))
    at_once = full.next_token_logits(request)
    prompt = backend.render(request.messages)
    ids = backend.encode(prompt)
    start = len(full.prefix)
    one_by_one = full._feed(full.state, ids[start:], start, one_at_a_time=True)
    torch.testing.assert_close(one_by_one[0].float(), at_once, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(SPARSE_PREFILL))
def test_a_sparse_prefill_keeping_every_pair_gives_the_logits_of_full(name):
    backend = _backend()
    request = _request("Which colour comes first?")
    reference = backend.session(make_method("full")).next_token_logits(request)
    logits = backend.session(make_method(SPARSE_PREFILL[name][0])).next_token_logits(request)
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(SPARSE_PREFILL))
def test_a_sparse_prefill_keeps_every_entry_skips_work_and_refuses_amounts(name):
    from longscope.methods.base import SessionSolver

    backend = _backend()
    request = _request("Which colour comes first?")
    method = make_method(SPARSE_PREFILL[name][1])
    generation = SessionSolver(backend, method, "independent").answer(None, 0, request)
    assert generation.kv_removed == 0 and generation.kv_masked == 0
    assert 0.3 < generation.attention_flops_skipped < 1.0
    keep_all = SessionSolver(backend, make_method(SPARSE_PREFILL[name][0]), "independent")
    assert keep_all.answer(None, 0, request).attention_flops_skipped == 0.0
    if name == "a-shape":  # the question chunk counts too: it goes through the pattern (tri-shape's is dense)
        context_only = method.prefill(backend.model, torch.tensor([backend.encode(request.context)]),
                                      method.new_cache(backend.model)).extra["sparse_tally"].skipped  # fmt: skip
        assert generation.attention_flops_skipped != pytest.approx(context_only)
    for amount in (":0.5", ":budget=100"):
        with pytest.raises(UsageError, match="takes no ratio or budget"):
            make_method(name + amount)

"""kvpress's presses as methods: exactly the promised entries per layer and head, ratio 0 is no press, AdaKV masks
rather than removes, the kvpress:Name(...) syntax, answers identical to kvpress's own pipeline, bad input refused."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_backend, tiny_llama, tiny_tokenizer

from longscope.core import GenerationRequest, UsageError
from longscope.methods import make_method
from longscope.methods.kv import _press_lookup as lookup
from longscope.methods.kv import kvpress_wrapper, presses
from methods.probes import run_logits

CONTEXT = " ".join(f"The secret number for item {i} is {i * 7919 % 10007}." for i in range(40))
QUESTIONS = ("what is the secret number for item 7", "which item has the number 42")

SCORERS = ["snapkv", "streaming-llm", "knorm", "tova", "expected-attention", "observed-attention"]


def request(question: str, new_tokens: int = 6) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"Context: {CONTEXT}\nQuestion: {question}?"}],
        max_new_tokens=new_tokens,
        context=CONTEXT,
    )


def wide_backend():
    """A tiny Llama with 64-wide heads: kvpress masks an entry (AdaKV) with a fake key that every query of a
    step must score below zero, which 16-wide random heads often cannot offer for a whole question."""
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, hidden_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=64,
                       max_position_embeddings=4096)  # fmt: skip
    return HFBackend(model, tokenizer, name="wide-llama", revision="test")


@pytest.fixture(scope="module")
def backend():
    return tiny_backend()


@pytest.fixture(scope="module")
def wide():
    return wide_backend()


def split_prompt(backend, question: str = QUESTIONS[0]) -> tuple[list[int], int]:
    """A prompt's tokens and where its context ends, as the session splits them."""
    req = request(question)
    prompt = backend.render(req.messages, req.answer_prefix, req.chat)
    ids = backend.encode(prompt)
    return ids, backend.session(make_method("full")).split(prompt, ids, CONTEXT)


@torch.inference_mode()
def prefill(backend, spec: str):
    ids, split = split_prompt(backend)
    model, method = backend.model, make_method(spec)
    return method, method.prefill(model, torch.tensor([ids[:split]]), method.new_cache(model))


def question_logits(backend, spec: str) -> torch.Tensor:
    """Logits of the question (all its tokens at once) and of one decode step, through the method's hooks."""
    chunk, step, _ = run_logits(backend, spec, split_prompt(backend))
    return torch.cat([chunk, step], dim=1)


def kv_heads(backend) -> int:
    return backend.model.config.num_key_value_heads


# -- exactly the promised entries -------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [":0.5", ":0.3", ":budget=37"])
@pytest.mark.parametrize("name", [*SCORERS, "kvpress:SnapKVPress", "kvpress:KeyDiffPress"])
def test_every_layer_and_head_keeps_exactly_the_promised_entries(backend, name, amount):
    method, state = prefill(backend, name + amount)
    n = state.context_tokens
    kept = method.kept(n)
    assert kept == (37 if "budget" in amount else int(n * (1 - float(amount[1:]))))
    head_dim = backend.model.config.hidden_size // backend.model.config.num_attention_heads
    for layer in state.cache.layers:
        assert tuple(layer.keys.shape) == (1, kv_heads(backend), kept, head_dim)
        assert tuple(layer.values.shape) == (1, kv_heads(backend), kept, head_dim)
    assert state.layer_lengths == [kept] * len(state.cache.layers)
    assert method.masked_entries(state) == 0


@pytest.mark.parametrize("amount", [":0.5", ":budget=100"])
def test_pyramidkv_spreads_the_promised_total_over_layers(amount):
    tokenizer = tiny_tokenizer()
    from longscope.backends.hf import HFBackend

    deep = HFBackend(tiny_llama(tokenizer, layers=4), tokenizer, name="tiny-4", revision="test")
    # A small window and beta so that a few hundred tokens take the pyramid, not SnapKV's uniform fallback.
    method, state = prefill(deep, "pyramidkv(window_size=4,beta=2)" + amount)
    kept = method.kept(state.context_tokens)
    lengths = state.layer_lengths
    assert sum(lengths) == 4 * kept
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    assert all(
        layer.keys.shape[2] == length for layer, length in zip(state.cache.layers, lengths, strict=True)
    )


def test_the_same_press_by_short_and_kvpress_name_keeps_the_same_entries(backend):
    _, short = prefill(backend, "snapkv(window_size=16):0.5")
    _, generic = prefill(backend, "kvpress:SnapKVPress(window_size=16):0.5")
    for a, b in zip(short.cache.layers, generic.cache.layers, strict=True):
        torch.testing.assert_close(a.keys, b.keys, rtol=0, atol=0)


# -- ratio 0 is no press ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [f"{name}:0" for name in SCORERS]
    + ["pyramidkv:0", "adakv:0", "chunked(chunk_length=64):0", "kvpress:TOVAPress:0", "snapkv:budget=1000"],
)
def test_ratio_zero_gives_exactly_the_logits_of_no_press(backend, spec):
    torch.testing.assert_close(
        question_logits(backend, spec), question_logits(backend, "full"), rtol=0, atol=0
    )


def test_a_compressing_press_changes_the_logits(backend):
    """The check above can fail: a press that removes entries does change what the model sees."""
    assert not torch.equal(question_logits(backend, "snapkv:0.5"), question_logits(backend, "full"))


# -- AdaKV masks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [":0.5", ":budget=40"])
def test_adakv_masks_the_promised_entries_and_removes_none(backend, amount):
    method, state = prefill(backend, "adakv" + amount)
    n = state.context_tokens
    layers, heads = len(state.cache.layers), kv_heads(backend)
    assert state.layer_lengths == [n] * layers  # physical entries: nothing removed
    assert method.masked_entries(state) == layers * heads * (n - method.kept(n))
    for mask in state.extra["masks"]:
        per_head = torch.bincount(mask[1], minlength=heads)
        assert int(per_head.sum()) == heads * (n - method.kept(n))
    # The masks live in the state; the model's attention modules carry none outside `attending`.
    assert all(layer.self_attn.masked_key_indices is None for layer in backend.model.model.layers)


def test_adakv_in_a_session_reports_masked_entries_and_answers_twice_alike(wide):
    session = wide.session(make_method("adakv:0.5"))
    first = session.ask(request(QUESTIONS[0]))
    n = session.state.context_tokens
    layers, heads = 2, kv_heads(wide)
    assert first.kv_removed == 0
    assert first.kv_masked == layers * heads * (n - int(n * 0.5))
    session.ask(request(QUESTIONS[1]))
    again = session.ask(request(QUESTIONS[0]))
    assert (again.text, again.kv_masked) == (first.text, first.kv_masked)
    assert all(layer.self_attn.masked_key_indices is None for layer in wide.model.model.layers)
    # The masks are active while it answers: AdaKV's answer logits differ from full attention's.
    assert not torch.equal(question_logits(wide, "adakv:0.5"), question_logits(wide, "full"))


def test_a_session_reports_removed_entries(backend):
    session = backend.session(make_method("snapkv:0.5"))
    generation = session.ask(request(QUESTIONS[0]))
    n = session.state.context_tokens
    assert generation.kv_removed == 2 * kv_heads(backend) * (n - int(n * 0.5))
    assert generation.kv_masked == 0
    assert session.state.layer_lengths == [int(n * 0.5)] * 2


# -- faithful to kvpress's own pipeline ------------------------------------------------------------------


def pipeline_answer(backend, question: str, press) -> str:
    """kvpress's pipeline on the same model, context and question split where the session splits them."""
    from transformers import pipeline

    content = f"Context: {CONTEXT}\nQuestion: {question}?"
    end = content.index(CONTEXT) + len(CONTEXT)
    pipe = pipeline(
        "kv-press-text-generation", model=backend.model, tokenizer=backend.tokenizer, device="cpu"
    )
    return pipe(content[:end], question=content[end:], press=press, max_new_tokens=6)["answer"]


@pytest.mark.parametrize(
    "spec", ["snapkv:0.5", "knorm:budget=50", "adakv:0.5", "kvpress:KeyRerotationPress(press=knorm):0.5"]
)
def test_answers_match_kvpress_pipeline(wide, spec):
    lookup.kvpress()  # registers the pipeline
    method = make_method(spec)
    session = wide.session(method)
    ours = session.ask(request(QUESTIONS[0])).text
    press = method.make_press(session.state.context_tokens)
    assert ours.strip() == pipeline_answer(wide, QUESTIONS[0], press).strip()


# -- observed attention runs eager only for its prefill ----------------------------------------------------


def test_observed_attention_prefills_eagerly_and_restores_the_implementation(backend, monkeypatch):
    seen = []
    original = kvpress_wrapper._attention

    def spy(model, implementation):
        seen.append(implementation)
        return original(model, implementation)

    monkeypatch.setattr(kvpress_wrapper, "_attention", spy)
    prefill(backend, "observed-attention:0.5")  # kvpress asserts it gets attention weights
    assert seen == ["eager"]
    assert backend.model.config._attn_implementation == "sdpa"


def test_the_attention_implementation_comes_back_after_an_error(backend):
    model = backend.model
    with pytest.raises(RuntimeError), kvpress_wrapper._attention(model, "eager"):
        assert model.config._attn_implementation == "eager"
        raise RuntimeError("prefill failed")
    assert model.config._attn_implementation == "sdpa"


def test_kvpress_refusing_a_context_is_one_clear_error(backend):
    """SnapKV needs a context longer than its window."""
    with pytest.raises(RuntimeError, match=r"snapkv\(window_size=4000\):0.5: kvpress refused a context"):
        prefill(backend, "snapkv(window_size=4000):0.5")


# -- decoding presses -------------------------------------------------------------------------------------


def test_a_decoding_press_compresses_while_answering_and_each_question_starts_from_the_context(wide):
    spec = "kvpress:DecodingPress(base_press=KnormPress,compression_interval=2,target_size=300)"
    session = wide.session(make_method(spec))
    first = session.ask(request(QUESTIONS[0]))
    assert first.kv_entries == 2 * kv_heads(wide) * 300
    assert session.state.layer_lengths == [session.state.context_tokens] * 2  # nothing removed at prefill
    assert [layer.get_seq_length() for layer in session.state.cache.layers] == session.state.layer_lengths
    again = session.ask(request(QUESTIONS[0]))
    assert again.text == first.text


# -- the syntax and bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "kvpress:SnapKVPress(window_size=32):0.5",
        "kvpress:snapkv(window_size=32,ratio=0.5)",
        "kvpress:SnapKVPress(window_size=32,compression_ratio=0.5)",
    ],
)
def test_kvpress_name_syntax(spec):
    method = make_method(spec)
    assert method.label() == "kvpress:SnapKVPress(window_size=32):0.5"
    assert make_method(method.label()) == method
    press = method.make_press(1000)
    assert type(press).__name__ == "SnapKVPress" and press.window_size == 32
    assert int(1000 * (1 - press.compression_ratio)) == 500


def test_budgets_and_nested_presses_in_the_kvpress_syntax():
    method = make_method(
        "kvpress:AdaKVPress(press=SnapKVPress(window_size=16),alpha_safeguard=0.1):budget=64"
    )
    assert method.budget == 64 and make_method(method.label()) == method
    press = method.make_press(1000)
    assert (press.alpha_safeguard, press.press.window_size) == (0.1, 16)
    assert int(1000 * (1 - press.compression_ratio)) == 64
    assert make_method("kvpress:TOVAPress(budget=64)").budget == 64


def test_short_wrapper_names():
    assert make_method("adakv(press=snapkv):0.5").label() == "adakv:0.5"
    chunked = make_method("chunked(press=knorm,chunk_length=64):0.25").make_press(1000)
    assert type(chunked).__name__ == "ChunkPress" and chunked.chunk_length == 64
    assert type(chunked.press).__name__ == "KnormPress"
    inner = make_method("adakv(press=expected-attention(n_sink=2)):0.5").make_press(100).press
    assert type(inner).__name__ == "ExpectedAttentionPress" and inner.n_sink == 2


def test_every_press_kvpress_ships_is_reachable():
    import kvpress

    exported = {name for name in kvpress.__all__ if name.endswith("Press")} - {"BasePress", "ScorerPress"}
    assert set(lookup.press_classes()) == exported
    for name in exported - set(lookup.REFUSED):
        assert lookup.press_class_name(name) == name
    # Short names' parameters are the press's own arguments.
    from longscope.methods import METHODS

    for short in METHODS:
        cls = METHODS.get(short)
        if isinstance(cls, type) and issubclass(cls, presses.NamedPress) and cls.press_class:
            own = {f.name for f in dataclasses.fields(cls)} - {"ratio", "budget", "query_aware"}
            assert own <= set(lookup.press_arguments(cls.press_class)), short


def refused(spec: str, *fragments: str) -> None:
    with pytest.raises(UsageError) as caught:
        make_method(spec)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_press_lists_the_presses():
    refused("kvpress:NoSuchPress:0.5", "unknown kvpress press 'NoSuchPress'", "SnapKVPress", "TOVAPress")
    refused("kvpress", "needs a press", "KnormPress")
    refused("adakv(press=nosuch):0.5", "unknown kvpress press 'nosuch'")


def test_unknown_argument_lists_the_press_arguments():
    refused("kvpress:SnapKVPress(windw=3):0.5", "unknown argument 'windw'", "kernel_size, window_size")
    refused("snapkv(windw=3):0.5", "unknown parameter 'windw'", "window_size")
    refused("adakv(press=snapkv(windw=3)):0.5", "unknown argument 'windw'", "window_size")


@pytest.mark.parametrize(
    "spec",
    [
        "kvpress:ThinKPress(key_channel_compression_ratio=0.5):0.5",
        "kvpress:DecodingPress(base_press=KnormPress):budget=100",
        "kvpress:ComposedPress(presses=SnapKVPress(compression_ratio=0.3)+KnormPress):0.5",
        "kvpress:DuoAttentionPress:0.25",
    ],
)
def test_presses_that_take_no_ratio_say_so(spec):
    refused(spec, "takes no ratio or budget")


def test_other_bad_input():
    refused("snapkv:1.5", "outside [0, 1)")
    refused("kvpress:SnapKVPress(ratio=0.2):0.5", "one ratio or one budget")
    refused("kvpress:FinchPress:0.5", "cannot run here")
    refused("adakv(press=observed-attention):0.5", "cannot wrap ObservedAttentionPress")
    refused("kvpress:AdaKVPress(press=ThinKPress):0.5", "ScorerPress")


def test_short_methods_are_made_without_kvpress(monkeypatch):
    """Importing kvpress takes seconds: the registry, and making a short-named method, must not need it."""
    for module in (lookup, kvpress_wrapper, presses):
        source = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = [
            alias.name for node in source.body if isinstance(node, ast.Import) for alias in node.names
        ]
        imported += [node.module or "" for node in source.body if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "kvpress"], module.__name__
    monkeypatch.setitem(sys.modules, "kvpress", None)  # any import of it now fails
    lookup.kvpress.cache_clear()
    lookup.press_classes.cache_clear()
    try:
        method = make_method("snapkv(window_size=32):budget=64")
        assert method.label() == "snapkv(window_size=32):budget=64"
        with pytest.raises(ImportError):
            lookup.kvpress()
    finally:
        lookup.kvpress.cache_clear()
        lookup.press_classes.cache_clear()


@pytest.mark.slow
def test_listing_the_methods_does_not_import_kvpress():
    code = (
        "import sys; from longscope.methods import make_method, METHODS; "
        "m = make_method('snapkv(window_size=32):budget=64'); assert 'snapkv' in METHODS; "
        "print('kvpress' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"False\s*", out)

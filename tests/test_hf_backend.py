"""The in-process backend: budgets, stop strings, timings, and the KV bytes it really holds."""

from __future__ import annotations

from conftest import tiny_backend

from longscope.core import GenerationRequest


def test_generation_respects_the_output_budget_and_measures_everything():
    backend = tiny_backend()
    backend.eos_ids = (
        set()
    )  # a random model may emit end-of-sequence at any point; this test needs the budget
    request = GenerationRequest(messages=[{"role": "user", "content": "The river runs wide. Say more."}],
                                max_new_tokens=7)  # fmt: skip
    result = backend.generate(request)
    prompt_tokens = backend.count_tokens(backend.render(request.messages))
    assert result.input_tokens == prompt_tokens
    assert result.output_tokens == 7 and result.finish_reason == "length"
    assert (
        result.prefill_s > 0 and result.decode_s > 0 and result.wall_s >= result.prefill_s + result.decode_s
    )
    config = backend.model.config
    head_dim = config.hidden_size // config.num_attention_heads
    # The last sampled token is never fed back, so the cache holds prompt + output - 1 positions.
    positions = prompt_tokens + result.output_tokens - 1
    expected = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * positions * 4
    assert result.kv_bytes == expected
    assert result.peak_memory_bytes > 0


def test_greedy_generation_is_deterministic_and_stops_at_a_stop_string():
    backend = tiny_backend()
    backend.eos_ids = set()
    base = GenerationRequest(
        messages=[{"role": "user", "content": "Rain falls on the road."}], max_new_tokens=12
    )
    first = backend.generate(base)
    assert backend.generate(base).text == first.text
    assert len(first.text) > 2
    stop = first.text[2:4]
    stopped = backend.generate(GenerationRequest(messages=base.messages, max_new_tokens=12, stop=(stop,)))
    assert stop not in stopped.text
    assert first.text.startswith(stopped.text)
    assert stopped.finish_reason == "stop"


def test_tokenizer_fingerprint_tells_templates_apart():
    assert tiny_backend("chatml").tokenizer_fingerprint() != tiny_backend("llama3").tokenizer_fingerprint()
    assert tiny_backend("chatml").tokenizer_fingerprint() == tiny_backend("chatml").tokenizer_fingerprint()

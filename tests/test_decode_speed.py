"""The in-process decode loop: the reserved KV cache gives the same greedy tokens as a plain loop written
here, and the precision option is recorded where it is honoured and refused where it is not."""

from __future__ import annotations

import pytest
import torch

from longscope.backends import parse_uri
from longscope.backends.hf import HFBackend, _ReservedLayer, reserve_cache
from longscope.core import GenerationRequest, UsageError
from tests.conftest import run_cli, tiny_backend


@torch.inference_mode()
def reference_greedy(backend: HFBackend, request: GenerationRequest) -> list[int]:
    """Today's loop, written out plainly: a DynamicCache grown by concatenation, the full logits, argmax."""
    _, ids, _ = backend.prepare(request)
    out = backend.model(input_ids=torch.tensor([ids]), use_cache=True)
    cache, generated = out.past_key_values, []
    token = int(out.logits[0, -1].argmax())
    while token not in backend.eos_ids and len(generated) < request.max_new_tokens:
        generated.append(token)
        if len(generated) == request.max_new_tokens:
            break
        out = backend.model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, int(out.logits[0, -1].argmax())
    return generated


def test_generate_gives_the_reference_loops_greedy_tokens():
    backend = tiny_backend()
    for seed, words in enumerate((40, 300)):
        text = " ".join(f"word{(i * 7 + seed) % 53}" for i in range(words))
        request = GenerationRequest(messages=[{"role": "user", "content": text}], max_new_tokens=48)
        expected = reference_greedy(backend, request)
        got = backend.generate(request)
        assert got.output_tokens == len(expected) > 10
        assert got.text == backend.decode(expected)


@torch.inference_mode()
def test_reserved_cache_gives_bitwise_the_same_logits_as_a_growing_one():
    """Greedy tokens of a random tiny model barely depend on the cache, so the logits are compared too."""
    backend = tiny_backend()
    prompt = torch.tensor([list(range(5, 60))])
    plain = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserved = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserve_cache(reserved, 8)
    for token in (11, 12, 13, 14, 15):
        fed = torch.tensor([[token]])
        want = backend.model(input_ids=fed, past_key_values=plain, use_cache=True).logits
        got = backend.model(input_ids=fed, past_key_values=reserved, use_cache=True).logits
        assert torch.equal(got, want)


def test_reserved_layer_keeps_views_of_the_held_length_and_falls_back_past_its_room():
    backend = tiny_backend()
    with torch.inference_mode():
        out = backend.model(input_ids=torch.tensor([[5, 6, 7, 8]]), use_cache=True)
        cache = out.past_key_values
        before = [layer.keys.clone() for layer in cache.layers]
        reserve_cache(cache, 2)
        assert all(type(layer) is _ReservedLayer for layer in cache.layers)
        assert all(torch.equal(layer.keys, b) for layer, b in zip(cache.layers, before, strict=True))
        for step in range(4):  # two steps fit the room, two more must still grow the cache
            backend.model(input_ids=torch.tensor([[9]]), past_key_values=cache, use_cache=True)
            assert cache.get_seq_length() == 5 + step
            assert cache.layers[0].keys.shape[-2] == 5 + step


def test_precision_option_is_parsed_for_in_process_models_and_refused_elsewhere():
    assert parse_uri("smollm2?precision=bf16").option("precision") == "bf16"
    parsed = parse_uri("hf:org/model?precision=fp32")
    assert (parsed.location, parsed.option("precision"), parsed.text) == (
        "org/model",
        "fp32",
        "hf:org/model?precision=fp32",
    )
    assert parse_uri("hf:org/model").option("precision") is None
    for uri in ("gguf:/tmp/m.gguf?precision=bf16", "openai:http://127.0.0.1:1/v1#m?precision=bf16"):
        with pytest.raises(UsageError, match="cannot honour precision=bf16"):
            parse_uri(uri)
    with pytest.raises(UsageError, match="unknown precision 'int3'"):
        parse_uri("smollm2?precision=int3")


def test_refused_precision_is_one_line_and_exit_code_2():
    result = run_cli("run", "--model", "gguf:/nonexistent.gguf?precision=bf16")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot honour precision=bf16" in lines[0], result.stderr


def test_precision_is_recorded_in_the_revision(tiny_model_dir):
    default = HFBackend.load(str(tiny_model_dir))
    bf16 = HFBackend.load(str(tiny_model_dir), precision="bf16")
    assert default.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.model_revision == default.model_revision + "+bf16"
    assert next(bf16.model.parameters()).dtype == torch.bfloat16


@pytest.mark.slow
def test_bundled_model_gives_the_reference_loops_greedy_answers():
    from longscope.backends import smollm2
    from longscope.tasks import make_task

    backend = smollm2.load()
    task = make_task("niah")
    for seed in range(3):
        request = task.build(backend, 1024, 0.5, seed).request(max_new_tokens=40)
        expected = reference_greedy(backend, request)
        assert backend.generate(request).text == backend.decode(expected)

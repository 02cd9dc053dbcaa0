"""LazyLLM's pruning on hand-built cases: its schedule, its selection by the last token's attention (against an
eager forward's weights), the rows it stops computing, the revival of parked tokens from the Aux Cache (their
keys those of a full prefill), and its refusals."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_llama, tiny_tokenizer

from longscope.backends.hf import HFBackend
from longscope.core import Capabilities, UsageError
from longscope.methods import make_method
from longscope.methods.kv.lazyllm import chosen
from methods.test_matrix import _request


@functools.cache
def _four_layers() -> HFBackend:
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, layers=4, hidden_size=128, intermediate_size=256, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=4096)  # fmt: skip
    return HFBackend(model, tokenizer, name="tiny-llama-4-layers", revision="test")


def _context_ids(backend: HFBackend, request) -> list[int]:
    session = backend.session(make_method("full"))
    prompt = backend.render(request.messages)
    ids = backend.encode(prompt)
    return ids[: session.split(prompt, ids, request.context)]


def test_the_schedule_prunes_at_evenly_spaced_layers_growing_sparser():
    method = make_method("lazyllm:0.5")
    assert method.pruning_layers(30) == {6: 1, 12: 2, 18: 3, 24: 4}
    # 200 context tokens keep 100: shares 1 − 0.5·k/4
    assert [method.keep_share(stage, 200) for stage in (1, 2, 3, 4)] == [0.875, 0.75, 0.625, 0.5]
    # Two layers: stages 1 and 2 would fall on layer 0 (nothing before it to score with); 3 and 4 share layer 1,
    # the sparser one wins.
    assert method.pruning_layers(2) == {1: 4}
    assert make_method("lazyllm:0").keep_share(4, 200) == 1.0
    assert make_method("lazyllm:budget=50").keep_share(2, 200) == 0.625


def test_the_selection_keeps_the_highest_scores_among_the_eligible():
    scores = torch.tensor([0.1, 0.5, 0.2, 0.4, 0.3, 0.9])
    eligible = torch.tensor([True, True, True, True, True, False])  # the step's last token is kept apart
    assert torch.nonzero(chosen(scores, eligible, 2)).flatten().tolist() == [1, 3]
    # among equal scores the earlier token is kept
    equal = torch.tensor([0.2, 0.2, 0.2, 0.0])
    assert torch.nonzero(chosen(equal, eligible[:4], 2)).flatten().tolist() == [0, 1]


def test_the_prefill_keeps_what_the_last_token_attends_most_and_computes_nothing_else_past_it():
    backend = _four_layers()
    model = backend.model
    ids = torch.tensor([_context_ids(backend, _request("Which colour comes first?"))])
    n = ids.shape[1]
    # The reference: an eager forward's attention of the last token at layer 1, averaged over the heads.
    implementation = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            weights = model.model(input_ids=ids, output_attentions=True).attentions[1][0, :, -1].mean(0)
    finally:
        model.config._attn_implementation = implementation
    method = make_method("lazyllm(stages=1):0.5")  # 4 layers, one stage: pruning at layer 2, keeping kept(n)
    assert method.pruning_layers(4) == {2: 1}
    keep = int((n - 1) * method.kept(n) / n)
    expected = set(weights[:-1].topk(keep).indices.tolist()) | {n - 1}

    state = method.prefill(model, ids, method.new_cache(model))
    positions = state.extra["positions"]
    assert [p.numel() for p in positions] == [n, n, keep + 1, keep + 1]
    assert set(positions[2].tolist()) == expected and torch.equal(positions[3], positions[2])
    assert state.layer_lengths == [n, n, keep + 1, keep + 1]
    dense = n * (n + 1) // 2
    skipped = 1 - (2 * dense + 2 * (keep + 1) * (keep + 2) // 2) / (4 * dense)
    assert method.measurements(state)["attention_flops_skipped"] == pytest.approx(skipped)
    # Every pruned token waits in the Aux Cache at layer 2 with its hidden state there.
    parked, hidden = state.extra["parked"][2]
    assert set(parked.tolist()) == set(range(n)) - expected and hidden.shape == (n - keep - 1, 128)


def test_a_token_the_question_selects_again_is_revived_from_the_aux_cache_with_the_keys_of_full():
    backend = _four_layers()
    model = backend.model
    request = _request("Which colour comes first?")
    prompt = backend.render(request.messages)
    ids = backend.encode(prompt)
    method = make_method("lazyllm(stages=1):0.5")
    session = backend.session(method)
    state = session._reach(prompt, ids, request.context)
    n = state.context_tokens
    parked = set(state.extra["parked"][2][0].tolist())
    held = state.extra["positions"][2].numel()
    with torch.no_grad(), method.attending(model, state):
        session._feed(state, ids[n:], n)
    after = state.extra["positions"][2]
    revived = [p for p in after[held:].tolist() if p < n]
    assert revived and set(revived) <= parked
    assert after.unique().numel() == after.numel()  # each token computed at most once per layer

    # Layers 0 and 1 are dense in the prefill, so a parked hidden state is full's input to layer 2: the revived
    # token's key there is full's key at its position.
    full = make_method("full")
    cache = full.new_cache(model)
    with torch.no_grad():
        full.prefill(model, torch.tensor([ids[:n]]), cache)
    where = held + after[held:].tolist().index(revived[0])
    torch.testing.assert_close(
        state.cache.layers[2].keys[0, :, where], cache.layers[2].keys[0, :, revived[0]], rtol=1e-4, atol=1e-5
    )
    method.restore(state)
    assert state.extra["positions"][2].numel() == held and set(state.extra["parked"][2][0].tolist()) == parked


def test_lazyllm_refuses_bad_stages_and_models_it_cannot_run():
    with pytest.raises(UsageError, match="stages must be at least 1"):
        make_method("lazyllm(stages=0):0.5")

    def backend_with(model) -> SimpleNamespace:
        return SimpleNamespace(capabilities=Capabilities(in_process_model=True), kind="hf", model=model)

    method = make_method("lazyllm:0.5")
    with pytest.raises(UsageError, match="flex_attention.*sdpa or eager") as caught:
        method.check_backend(
            backend_with(SimpleNamespace(config=SimpleNamespace(_attn_implementation="flex_attention")))
        )
    assert "\n" not in str(caught.value)
    no_layers = SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa"), model=SimpleNamespace())
    with pytest.raises(UsageError, match="Llama-style model"):
        method.check_backend(backend_with(no_layers))
    method.check_backend(SimpleNamespace(capabilities=Capabilities(in_process_model=True), kind="hf",
                                         model=_four_layers().model))  # fmt: skip


def test_a_question_goes_in_one_forward_and_its_last_token_chooses_what_is_computed_past_the_stage():
    """Layers hold different lengths after the prefill; LazyLLM masks attention itself, so the question chunk
    is one step, pruned by its last token over the context and the chunk alike (as the paper prunes a prompt)."""
    backend = _four_layers()
    model = backend.model
    request = _request("Which colour comes first?")
    ids = backend.encode(backend.render(request.messages))
    method = make_method("lazyllm(stages=1):0.5")
    session = backend.session(method)
    state = session._reach(backend.render(request.messages), ids, request.context)
    n, total = state.context_tokens, len(ids)
    assert len(set(state.layer_lengths)) > 1 and total - n > 2
    held = set(state.extra["positions"][2].tolist())

    # The reference: an eager forward of the whole prompt; layers 0 and 1 are dense in LazyLLM, so the question's
    # last token attends there as in full.
    implementation = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            attentions = model.model(input_ids=torch.tensor([ids]), output_attentions=True).attentions
        weights = attentions[1][0, :, -1]
    finally:
        model.config._attn_implementation = implementation
    target = int((total - 1) * method.kept(n) / n)  # the step's tokens before its last, at the stage's share
    expected = set(weights.mean(0)[:-1].topk(target).indices.tolist()) | {total - 1}

    forwards = []
    handle = model.model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        with torch.no_grad(), method.attending(model, state):
            session._feed(state, ids[n:], n)
    finally:
        handle.remove()
    assert len(forwards) == 1
    after = state.extra["positions"][2]
    assert set(after.tolist()) == held | expected and after.unique().numel() == after.numel()
    # The question's own tokens not chosen stop at layer 2 and wait in the Aux Cache there.
    dropped = set(range(n, total)) - expected
    assert dropped and dropped <= set(state.extra["parked"][2][0].tolist())
    assert method.masked_entries(state) == 2 * len({p for p in held if p < n} - expected)  # layers 2 and 3


@pytest.mark.slow  # 29 s on the shared 2-core machine: the fallback feeds every turn a token at a time
def test_multi_turn_answers_match_feeding_the_turns_a_token_at_a_time(monkeypatch):
    from longscope.core import GenerationRequest
    from longscope.methods.kv.lazyllm import LazyLLM
    from methods.test_matrix import _context

    backend = _four_layers()

    def conversation() -> list[str]:
        session = backend.session(make_method("lazyllm:0.5"))
        messages = list(_request("Which colour comes first?").messages)
        answers = []
        for follow_up in ("and the second one?", "say it again"):
            request = GenerationRequest(messages=list(messages), max_new_tokens=6, context=_context())
            answers.append(session.ask(request, keep="prompt").text)
            messages += [{"role": "assistant", "content": answers[-1]}]
            messages += [{"role": "user", "content": follow_up}]
        return answers

    whole = conversation()
    monkeypatch.setattr(LazyLLM, "attends_uneven_layers", False)  # the session's fallback for uneven layers
    assert conversation() == whole

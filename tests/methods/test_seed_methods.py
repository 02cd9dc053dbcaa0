"""The seed methods' selection rules on hand-built cases: LongHeads' chunk summaries, InfLLM's representative
keys and block lookup, SirLLM's entropy retention with decay; their accounting and their refusals."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import pytest
import torch

from longscope.config import RunConfig
from longscope.core import Sample, Turn, UsageError
from longscope.methods import make_method
from longscope.methods.base import SessionSolver
from longscope.methods.kv._block_memory import Layout
from longscope.methods.kv.sirllm import chosen, token_entropy
from methods.test_matrix import _backend, _request


def test_longheads_summary_key_is_the_chunk_keys_weighted_by_its_mean_query():
    method = make_method("longheads(sinks=2,block=2,local=0)")
    layout = Layout(sinks=2, size=2, count=2)
    keys = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    queries = torch.zeros(6, 2)
    queries[2:4, 0] = math.log(3)  # chunk 0's mean query (ln 3, 0): its keys get e^ln3 : e^0 = 3 : 1
    queries[4:6, 1] = math.log(3)  # chunk 1's mean query (0, ln 3): its second key (1, 0) gets 1, the first 3
    summary = method.summarise(queries[None, None], keys[None, None], layout, 1.0)
    torch.testing.assert_close(summary[0], torch.tensor([[0.75, 0.25], [0.25, 0.75]]))
    # A query along the second axis prefers chunk 1's summary, one along the first chunk 0's.
    assert method.relevance(summary, torch.tensor([[[[0.0, 1.0]]]]), 1.0).argmax().item() == 1
    picked = make_method("longheads(sinks=2,block=2,local=0,top=1)").select(
        summary, torch.tensor([[[[1.0, 0.0]]]]), 6, 2, 1.0
    )
    assert picked.tolist() == [[0]]


def test_infllm_representatives_are_the_keys_the_following_queries_attend_most():
    method = make_method("infllm(sinks=0,block=4,local=2,representatives=1)")
    layout = Layout(sinks=0, size=4, count=2)
    keys = torch.zeros(8, 4)
    keys[:, 0] = 1.0
    keys[2, 0] = keys[6, 0] = 5.0  # each block's third token: the highest logit from the queries after it
    keys[torch.arange(8), 1 + torch.arange(8) % 3] = torch.arange(8, dtype=torch.float)  # tell them apart
    queries = torch.zeros(8, 4)
    queries[:, 0] = 1.0
    # Scores Σ_{j=1..2} q_{m+j}·k_m: block 0 → 2, 2, 10, 2; block 1 → 2, 2, 5 (one query after it), 0.
    summary = method.summarise(queries[None, None], keys[None, None], layout, 1.0)
    torch.testing.assert_close(summary[0, :, 0], keys[[2, 6]])
    # The lookup scores a block by the query against its representatives: token 2 is (5, 0, 0, 2),
    # token 6 is (5, 6, 0, 0): a query along axis 1 finds block 1.
    query = torch.zeros(1, 1, 1, 4)
    query[..., 1] = 1.0
    assert method.relevance(summary, query, 1.0).argmax().item() == 1


def test_infllm_loads_fewer_bytes_per_step_than_the_whole_cache_and_all_blocks_load_everything():
    backend = _backend()
    request = _request("Which colour comes first?")
    sparse = SessionSolver(backend, make_method("infllm(sinks=8,block=16,local=16,top=2)"), "independent")
    everything = SessionSolver(backend, make_method("infllm(sinks=8,block=16,local=16):0"), "independent")
    few, every = sparse.answer(None, 0, request), everything.answer(None, 0, request)
    assert every.kv_masked == 0 and few.kv_masked > 0
    assert 0 < few.kv_bytes_loaded < every.kv_bytes_loaded
    # Every block selected: a decode step reads every entry held before it (all but the step's own, on average).
    model = backend.model
    entry = 2 * model.config.head_dim * 4 * model.config.num_key_value_heads * model.config.num_hidden_layers
    held_at_first_step = every.input_tokens + 1
    steps = every.output_tokens - 1
    expected = entry * (held_at_first_step + (held_at_first_step + steps - 1)) / 2
    assert every.kv_bytes_loaded == pytest.approx(expected, abs=entry)


def test_sirllm_keeps_sinks_recent_and_the_highest_entropy():
    scores = torch.tensor([float("inf"), 1.0, 5.0, 2.0, 4.0, 3.0])
    assert chosen(scores, budget=4, sinks=1, recent=1).tolist() == [0, 2, 4, 5]
    assert chosen(scores, budget=10, sinks=1, recent=1).tolist() == list(range(6))


@pytest.mark.parametrize(("decay", "kept"), [(0.5, [0, 1, 4]), (1.0, [0, 1, 2])])
def test_sirllm_decays_older_turns_before_cutting(decay, kept):
    method = make_method(f"sirllm(sinks=1,decay={decay}):budget=3")
    keys = torch.arange(5, dtype=torch.float).reshape(1, 1, 5, 1)
    layer = SimpleNamespace(keys=keys.clone(), values=keys.clone())
    state = SimpleNamespace(
        cache=SimpleNamespace(layers=[layer]),
        # Four entries kept from earlier turns, then one the last turn added (scored 8).
        extra={"scores": torch.tensor([float("inf"), 10.0, 9.0, 1.0, 8.0]), "kept_count": 4, "budget": 3},
    )
    method.cut(state, decay=True)  # decay 0.5: 10 → 5, 9 → 4.5, so the new 8 outranks them
    assert layer.keys.flatten().tolist() == kept
    assert state.extra["kept_count"] == 3


def test_sirllm_token_entropy_is_the_negative_log_likelihood():
    backend = _backend()
    model = backend.model
    ids = torch.tensor([backend.encode("The blue lamp stands by the door.")])
    with torch.no_grad():
        hidden = model.model(input_ids=ids).last_hidden_state
        logits = model(input_ids=ids).logits[0].float()
    with torch.no_grad():
        scores, _ = token_entropy(model, hidden, ids[0], None)
    expected = -torch.log_softmax(logits[:-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
    assert math.isinf(scores[0])
    torch.testing.assert_close(scores[1:], expected, rtol=1e-4, atol=1e-4)


def test_sirllm_refuses_a_run_without_turns_in_one_line():
    from longscope.plan import check_plan

    method = make_method("sirllm:0.5")
    with pytest.raises(UsageError, match="--mode multi-turn") as caught:
        check_plan([], [method], RunConfig(methods=["sirllm:0.5"], mode="independent"), _backend())
    assert "\n" not in str(caught.value)
    check_plan([], [method], RunConfig(methods=["sirllm:0.5"], mode="multi-turn"), _backend())
    single = Sample(
        id="s/1",
        task="t",
        context="a b c",
        turns=(Turn(question="q", answers=("a",)),),
        template="{context}{question}",
        max_new_tokens=4,
    )
    with pytest.raises(UsageError, match="single turn"):
        method.check_sample(single, _backend())


@pytest.mark.parametrize("spec", ["longheads", "infllm(block=512)"])
def test_a_block_that_does_not_fit_the_context_is_refused(spec):
    sample = Sample(
        id="s/1",
        task="t",
        context=" ".join(["word"] * 50),
        turns=(Turn(question="q", answers=()),),
        template="{context}{question}",
        max_new_tokens=4,
    )
    with pytest.raises(UsageError, match="do not fit the context of s/1"):
        make_method(spec).check_sample(sample, _backend())


def test_bad_block_parameters_are_refused():
    for spec in ("infllm(representatives=0)", "infllm(block=4,representatives=5)", "longheads(block=0)"):
        with pytest.raises(UsageError):
            make_method(spec)
    for spec in ("sirllm(decay=0)", "sirllm(sinks=-1)"):
        with pytest.raises(UsageError):
            make_method(spec)


# --- LongHeads and InfLLM past the trained window -----------------------------------------------------------


@functools.cache
def _short_window_backend(window: int = 256):
    """A tiny Llama trained to ``window`` positions, to read contexts past it (the same weights at any window)."""
    from conftest import tiny_llama, tiny_tokenizer

    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, hidden_size=128, intermediate_size=256, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=window)  # fmt: skip
    return HFBackend(model, tokenizer, name=f"tiny-llama-{window}", revision="test")


def _long_request():
    from longscope.core import GenerationRequest
    from longscope.haystack import corpus

    context = "".join(corpus("noise").units(0, 40))  # about 430 tokens: past the 256 trained
    return GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\n\nQuestion: which colour?"}],
        max_new_tokens=4,
        context=context,
    )


def test_a_rotation_by_a_shift_moves_a_rotated_key_to_the_shifted_position():
    from longscope.methods.kv._block_memory import rotated

    backend = _short_window_backend()
    rotary = backend.model.model.rotary_emb
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    key = torch.randn(1, 1, 3, 64)
    positions = torch.tensor([[5, 40, 200]])

    def at(where):
        cos, sin = rotary(key, position_ids=where)
        return apply_rotary_pos_emb(key, key, cos, sin)[1]

    shift = torch.tensor([10, 0, 33])
    torch.testing.assert_close(
        rotated(at(positions), shift, rotary.inv_freq), at(positions + shift), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "spec", ["longheads(sinks=8,block=16,local=16,top=4)", "infllm(sinks=8,block=16,local=16,top=4)"]
)
def test_past_the_trained_window_every_distance_read_stays_inside_it(spec):
    backend = _short_window_backend()
    method = make_method(spec)
    assert method.extends_window and method.extended_window(256) == 4 * 256
    assert method.reach() < 256
    solver = SessionSolver(backend, method, "independent")
    generation = solver.answer(None, 0, _long_request())
    assert generation.output_tokens >= 1 and generation.kv_masked > 0
    session = solver.session
    assert len(session.prefix) > 256  # the context alone is past the window
    assert 0 < session.state.extra["widest"] <= method.reach()
    # A ratio attends a share that grows with the context: nothing past the window is claimed.
    assert make_method(spec.replace(")", "):0.5", 1)).extended_window(256) == 256


def test_past_the_window_with_every_chunk_selected_the_block_by_block_rows_give_the_logits_of_full(
    monkeypatch,
):
    """Every chunk selected leaves nothing to re-assign (the gathered keys are all the keys, side by side): the
    rows going chunk by chunk through the selection then compute exactly full attention. (The cap that keeps a
    step's columns inside the window is lifted here: with it, every chunk cannot be selected past the window.)"""
    from longscope.methods.kv.longheads import LongHeads

    monkeypatch.setattr(LongHeads, "blocks_within", lambda self, trained, fixed: None)
    backend = _short_window_backend()
    request = _long_request()
    # full cannot be asked past its window: the same weights with a longer one give the reference.
    reference = _short_window_backend(4096).session(make_method("full")).next_token_logits(request)
    everything = make_method("longheads(sinks=8,block=16,local=16,top=1000)")
    logits = backend.session(everything).next_token_logits(request)
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4)


def _conversation_past_the_window():
    """A context of about 200 tokens (inside the 256 trained), a first turn, then a second turn whose
    conversation outgrows the window."""
    from longscope.core import GenerationRequest
    from longscope.haystack import corpus

    context = "".join(corpus("noise").units(0, 18))
    first = [{"role": "user", "content": f"{context}\n\nQuestion: which colour?"}]
    follow_up = "".join(corpus("noise").units(1, 9))  # about 90 tokens more
    second = [*first, {"role": "assistant", "content": "red"}, {"role": "user", "content": follow_up}]
    return [GenerationRequest(messages=m, max_new_tokens=2, context=context) for m in (first, second)]


@pytest.mark.parametrize(
    "spec", ["longheads(sinks=8,block=16,local=16):0", "infllm(sinks=8,block=16,local=16):0"]
)
def test_a_ratio_in_a_conversation_grown_past_the_window_reads_no_distance_beyond_it(spec, monkeypatch):
    """A ratio claims only the trained window; once a conversation outgrows it the later turn goes block by block
    and the blocks read are capped (LongHeads packs them side by side; InfLLM reads them at one distance), as
    both papers fit the attended span to the pre-trained length. Ratio 0 asks for every block."""
    backend = _short_window_backend()
    method = make_method(spec)
    assert method.extended_window(256) == 256

    def widest() -> int:
        session = backend.session(method)
        first, second = _conversation_past_the_window()
        session.ask(first, keep="prompt")
        assert session.state.context_tokens < 256 and session.state.extra.get("widest", 0) == 0
        generation = session.ask(second, keep="prompt")
        assert generation.input_tokens > 256 and generation.output_tokens >= 1
        return session.state.extra["widest"]

    assert 0 < widest() < 256
    if spec.startswith("longheads"):
        # Uncapped, every block side by side with the tail would reach past the window.
        monkeypatch.setattr(type(method), "blocks_within", lambda self, trained, fixed: None)
        assert widest() >= 256

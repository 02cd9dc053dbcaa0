"""Squeezed Attention's promises: all clusters (or ratio 0) is full attention, the kept fraction follows the
ratio, nothing is evicted, the k-means is deterministic, the shared cache and index survive questions, bad
input is refused."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_backend

from longscope.core import GenerationRequest, UsageError
from longscope.methods import make_method
from longscope.methods.kv import squeezed
from methods.probes import run_logits

CONTEXT = " ".join(f"The secret number for item {i} is {i * 7919 % 10007}." for i in range(40))
LAYERS, KV_HEADS = 2, 2  # tiny_llama


def request(question: str, new_tokens: int = 6) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"Context: {CONTEXT}\nQuestion: {question}?"}],
        max_new_tokens=new_tokens,
        context=CONTEXT,
    )


@pytest.fixture(scope="module")
def backend():
    return tiny_backend()


@pytest.fixture(scope="module")
def prompt_ids(backend) -> tuple[list[int], int]:
    """A prompt's tokens and where its context ends, as the session splits them."""
    req = request("what is the secret number for item 7")
    prompt = backend.render(req.messages, req.answer_prefix, req.chat)
    ids = backend.encode(prompt)
    return ids, backend.session(make_method("full")).split(prompt, ids, CONTEXT)


@pytest.fixture(scope="module")
def full_logits(backend, prompt_ids):
    chunk, step, _ = run_logits(backend, "full", prompt_ids)
    return chunk, step


# -- equal to full attention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["squeezed(select_all=true):0.5", "squeezed(select_all=true,levels=2):0.75"])
def test_every_cluster_selected_is_full_attention(backend, prompt_ids, full_logits, spec):
    chunk, step, state = run_logits(backend, spec, prompt_ids)
    # The selection machinery really ran (an index, the masked path), and hid nothing.
    assert isinstance(state.extra["squeezed_index"], squeezed.SqueezedIndex)
    assert "squeezed_masked_mean" in state.extra
    assert state.extra["squeezed_masked_last"] == 0
    torch.testing.assert_close(chunk, full_logits[0])
    torch.testing.assert_close(step, full_logits[1])


def test_ratio_zero_is_full_attention(backend, prompt_ids, full_logits):
    chunk, step, state = run_logits(backend, "squeezed:0", prompt_ids)
    assert "squeezed_index" not in state.extra
    torch.testing.assert_close(chunk, full_logits[0])
    torch.testing.assert_close(step, full_logits[1])


@pytest.mark.parametrize("spec", ["squeezed:0.5", "squeezed(levels=2):0.5"])
def test_selection_changes_the_logits(backend, prompt_ids, full_logits, spec):
    """The comparisons above can fail: hiding half the context moves the logits."""
    chunk, step, state = run_logits(backend, spec, prompt_ids)
    assert state.extra["squeezed_masked_last"] > 0
    assert not torch.allclose(chunk, full_logits[0])
    assert not torch.allclose(step, full_logits[1])


def test_session_probe_every_cluster_selected_is_full(backend):
    req = request("what is item 12")
    full = backend.session(make_method("full")).next_token_logits(req)
    torch.testing.assert_close(
        backend.session(make_method("squeezed(select_all=true):0.5")).next_token_logits(req), full
    )
    assert not torch.allclose(backend.session(make_method("squeezed:0.5")).next_token_logits(req), full)


def test_attention_implementation_restored_even_on_error(backend, prompt_ids):
    model = backend.model
    before = model.config._attn_implementation
    ids, split = prompt_ids
    method = make_method("squeezed:0.5")
    state = method.prefill(model, torch.tensor([ids[:split]]), method.new_cache(model))
    assert model.config._attn_implementation == before
    with pytest.raises(RuntimeError, match="boom"), method.attending(model, state):
        assert model.config._attn_implementation == squeezed.ATTENTION_NAME
        raise RuntimeError("boom")
    assert model.config._attn_implementation == before


# -- how much is kept ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [1, 2])
def test_half_the_context_masked_nothing_removed(backend, levels):
    """At ratio 0.5, the threshold is calibrated on the context's last queries to keep half on average: on
    those queries the kept fraction overshoots by at most one cluster's keys; on the question's tokens it is
    an estimate, here within ±0.15 of half (observed 0.47–0.53 on this model)."""
    session = backend.session(make_method(f"squeezed(levels={levels}):0.5"))
    full = backend.session(make_method("full")).ask(request("what is item 3"))
    gen = session.ask(request("what is item 3"))
    state = session.state
    n = state.context_tokens
    index = state.extra["squeezed_index"]
    biggest = max(float(layer.sizes.max()) for layer in index.layers)
    assert 0.5 <= state.extra["squeezed_calibrated_keep"] <= 0.5 + biggest / n
    assert gen.kv_removed == 0
    assert gen.kv_entries == full.kv_entries
    whole = n * LAYERS * KV_HEADS
    assert abs(gen.kv_masked / whole - 0.5) <= 0.15
    assert abs(state.extra["squeezed_masked_mean"] / whole - 0.5) <= 0.15
    assert gen.kv_bytes > full.kv_bytes  # every entry, plus the cluster index


def test_budget_keeps_about_the_budget(backend):
    session = backend.session(make_method("squeezed:budget=200"))
    gen = session.ask(request("what is item 3"))
    state = session.state
    assert state.extra["squeezed_index"].target_keep == pytest.approx(200 / state.context_tokens)
    kept = state.context_tokens * LAYERS * KV_HEADS - gen.kv_masked
    assert kept == pytest.approx(200 * LAYERS * KV_HEADS, rel=0.4)
    assert gen.kv_removed == 0


def test_budget_above_the_context_is_refused(backend):
    with pytest.raises(UsageError, match="larger than the context"):
        backend.session(make_method("squeezed:budget=100000")).ask(request("what is item 3"))


# -- k-means -------------------------------------------------------------------------------------------------


def blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around 4 well separated directions, 2 heads: (2, 200, 8), and which direction each came from."""
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, 4, (2, 200), generator=gen)
    centres = torch.eye(8)[:4] * 5
    return centres[truth] + 0.1 * torch.randn(2, 200, 8, generator=gen), truth


def test_kmeans_is_deterministic_and_seeded():
    points, _ = blobs()
    first = squeezed.kmeans(points, 6, 5, torch.Generator().manual_seed(0))
    again = squeezed.kmeans(points, 6, 5, torch.Generator().manual_seed(0))
    other = squeezed.kmeans(points, 6, 5, torch.Generator().manual_seed(1))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_kmeans_finds_separated_clusters_in_blocks(monkeypatch):
    points, truth = blobs()
    centroids, labels, sizes = squeezed.kmeans(points, 4, 10, torch.Generator().manual_seed(3))
    for head in range(2):  # the same partition as the truth, up to renaming
        pairs = {(int(a), int(b)) for a, b in zip(labels[head], truth[head], strict=True)}
        assert len(pairs) == 4 == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    assert torch.equal(sizes.sum(-1), torch.full((2,), 200.0))
    # Centroids are the means of their raw points.
    torch.testing.assert_close(centroids[0, int(labels[0, 0])], points[0][labels[0] == labels[0, 0]].mean(0))
    monkeypatch.setattr(squeezed, "_CHUNK_ELEMENTS", 50)  # many blocks: the same answer
    blocked = squeezed.kmeans(points, 4, 10, torch.Generator().manual_seed(3))
    assert torch.equal(blocked[1], labels)
    torch.testing.assert_close(blocked[0], centroids)


def test_gpu_cluster_sums_match_the_cpu_ones(monkeypatch):
    """The one-hot block sums used on a GPU (deterministic where scatter_add_ is not) equal scatter_add_'s."""
    points, truth = blobs()
    weights = torch.rand(2, 200, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(squeezed, "_CHUNK_ELEMENTS", 64)
    for got, want in zip(
        squeezed._blocked_sums(points, truth, 5, weights),
        squeezed._cluster_sums(points, truth, 5, weights),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_index_is_deterministic_per_seed(backend, prompt_ids):
    *_, a = run_logits(backend, "squeezed(levels=2):0.5", prompt_ids)
    *_, b = run_logits(backend, "squeezed(levels=2):0.5", prompt_ids)
    *_, c = run_logits(backend, "squeezed(levels=2,seed=5):0.5", prompt_ids)
    first, again, other = (s.extra["squeezed_index"] for s in (a, b, c))
    for x, y in zip(first.layers, again.layers, strict=True):
        for t, u in zip(x.tensors(), y.tensors(), strict=True):
            assert torch.equal(t, u)
    assert first.threshold == again.threshold and first.coarse_threshold == again.coarse_threshold
    assert any(not torch.equal(x.labels, y.labels) for x, y in zip(first.layers, other.layers, strict=True))


def test_default_cluster_counts():
    method = make_method("squeezed:0.5")
    assert method.fine_clusters(800) == 50
    assert method.fine_clusters(10**6) == squeezed.MAX_DEFAULT_CLUSTERS
    assert method.fine_clusters(5) == 1
    assert make_method("squeezed(clusters=64):0.5").fine_clusters(10) == 10
    assert method.coarse_count(50) == 7


# -- the shared context --------------------------------------------------------------------------------------


def snapshot(state) -> list[torch.Tensor]:
    cache = [t.clone() for layer in state.cache.layers for t in (layer.keys, layer.values)]
    index = [t.clone() for layer in state.extra["squeezed_index"].layers for t in layer.tensors()]
    return cache + index


def test_questions_leave_cache_and_index_unchanged(backend):
    session = backend.session(make_method("squeezed(levels=2):0.5"))
    first = session.ask(request("what is item 3"), keep="context")
    state = session.state
    threshold = state.extra["squeezed_threshold"]
    before = snapshot(state)
    second = session.ask(request("what is the number of item 21"), keep="context")
    assert session.state is state  # the context was not prefilled again
    after = snapshot(state)
    assert len(before) == len(after)
    for x, y in zip(before, after, strict=True):
        assert torch.equal(x, y)
    assert state.extra["squeezed_threshold"] == threshold
    assert [layer.get_seq_length() for layer in state.cache.layers] == [state.context_tokens] * LAYERS
    assert first.kv_removed == second.kv_removed == 0
    # The second answer is the one a fresh session gives.
    fresh = backend.session(make_method("squeezed(levels=2):0.5")).ask(
        request("what is the number of item 21"), keep="context"
    )
    assert (second.text, second.kv_masked) == (fresh.text, fresh.kv_masked)


def test_conversation_turns_attend_to_earlier_turns(backend):
    """Multi-turn: the conversation after the context is never masked, the context keeps its index."""
    session = backend.session(make_method("squeezed:0.5"))
    first = session.ask(request("what is item 3"), keep="prompt")
    state = session.state
    index = state.extra["squeezed_index"]
    follow = GenerationRequest(
        messages=[
            *request("what is item 3").messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": "and item 4?"},
        ],
        max_new_tokens=4,
        context=CONTEXT,
    )
    second = session.ask(follow, keep="prompt")
    assert session.state is state and state.extra["squeezed_index"] is index
    assert second.kv_removed == 0
    assert second.kv_entries > first.kv_entries  # the first turn is still in the cache
    assert 0 < second.kv_masked <= state.context_tokens * LAYERS * KV_HEADS


# -- parameters ----------------------------------------------------------------------------------------------


def test_label_and_parameters():
    method = make_method("squeezed(levels=2,clusters=32):0.25")
    assert (method.levels, method.clusters, method.ratio) == (2, 32, 0.25)
    assert method.label() == "squeezed(clusters=32,levels=2):0.25"
    assert make_method("squeezed:budget=64").budget == 64


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("squeezed:1.0", "outside [0, 1)"),
        ("squeezed:budget=0", "at least 1"),
        ("squeezed(clusters=0):0.5", "clusters must be at least 1"),
        ("squeezed(levels=3):0.5", "levels is 1"),
        ("squeezed(coarse_clusters=4):0.5", "needs levels=2"),
        ("squeezed(levels=2,coarse_clusters=0):0.5", "coarse_clusters must be at least 1"),
        ("squeezed(levels=2,clusters=4,coarse_clusters=8):0.5", "must not exceed clusters"),
        ("squeezed(iterations=0):0.5", "iterations must be at least 1"),
        ("squeezed(calibration_tokens=0):0.5", "calibration_tokens must be at least 1"),
        ("squeezed(centroids=8):0.5", "unknown parameter 'centroids'"),
        ("squeezed(levels=two):0.5", "levels"),
    ],
)
def test_bad_parameters_are_refused(spec, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make_method(spec)

"""Position extension (PI, NTK-aware, YaRN, SelfExtend) on a tiny Llama: factor 1 is the plain model, the
frequencies and grouped positions match hand-computed values, and bad input is one UsageError line."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from conftest import tiny_llama, tiny_tokenizer

from longscope.config import RunConfig
from longscope.core import GenerationRequest, UsageError
from longscope.haystack import corpus
from longscope.methods import make_method
from longscope.methods.kv import self_extend
from longscope.methods.kv.self_extend import _Grouping
from longscope.plan import check_plan
from longscope.tasks import make_task

METHODS = ["pi", "ntk", "yarn", "self-extend(window=32)"]
TRAINED = 256


@functools.cache
def _backend():
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, max_position_embeddings=TRAINED)
    return HFBackend(model, tokenizer, name="tiny-llama-256", revision="test")


def _request() -> GenerationRequest:
    context = "".join(corpus("essay").units(0, 4))  # about 180 tokens: inside the 256-token window
    return GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\n\nQuestion: what is the essay about?"}],
        max_new_tokens=3,
        context=context,
    )


def _at_factor_one(spec: str):
    """The method with factor 1, which users may not ask for (it extends nothing) but which must reduce to the
    plain model: set past the constructor's check."""
    method = make_method(spec)
    object.__setattr__(method, "factor", 1.0)
    return method


def _inv_freq() -> torch.Tensor:
    return _backend().model.model.rotary_emb.inv_freq.float().clone()


@pytest.mark.parametrize("spec", METHODS)
def test_factor_one_gives_the_logits_of_full(spec):
    backend = _backend()
    reference = backend.session(make_method("full")).next_token_logits(_request())
    logits = backend.session(_at_factor_one(spec)).next_token_logits(_request())
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", METHODS)
def test_a_real_factor_changes_the_logits_and_leaves_the_model_as_it_was(spec):
    backend = _backend()
    before = _inv_freq()
    reference = backend.session(make_method("full")).next_token_logits(_request())
    logits = backend.session(make_method(spec)).next_token_logits(_request())
    assert (logits - reference).abs().max() > 1e-4
    assert torch.equal(_inv_freq(), before)
    assert backend.model.model.rotary_emb.attention_scaling == 1.0
    assert backend.model.config._attn_implementation != "longscope_self_extend"
    torch.testing.assert_close(backend.session(make_method("full")).next_token_logits(_request()), reference)


def test_pi_divides_every_frequency_so_position_2m_reads_as_m():
    inv_freq = _inv_freq()
    scaled, attention = make_method("pi(factor=2)").frequencies(inv_freq, TRAINED)
    assert attention == 1.0
    torch.testing.assert_close(scaled, inv_freq / 2)
    rotary = _backend().model.model.rotary_emb
    x = torch.zeros(1, 1, 16)
    method = make_method("pi(factor=2)")
    with method._scaled(_backend().model):
        cos_far, sin_far = rotary(x, torch.tensor([[10, 200]]))
    cos_near, sin_near = rotary(x, torch.tensor([[5, 100]]))
    torch.testing.assert_close(cos_far, cos_near)
    torch.testing.assert_close(sin_far, sin_near)


def test_ntk_raises_the_base_by_the_factor_to_the_power_d_over_d_minus_2():
    # The tiny model: head dim 16, base 10000 (transformers' default rope_theta).
    dim, base, factor = 16, 10000.0, 2.0
    assert _inv_freq().numel() == dim // 2
    new_base = base * factor ** (dim / (dim - 2))
    expected = torch.tensor([new_base ** (-2 * i / dim) for i in range(dim // 2)])
    scaled, attention = make_method("ntk(factor=2)").frequencies(_inv_freq(), TRAINED)
    assert attention == 1.0
    torch.testing.assert_close(scaled, expected, rtol=1e-5, atol=0)
    assert math.isclose(scaled[0], 1.0) and math.isclose(scaled[-1], _inv_freq()[-1] / factor, rel_tol=1e-5)


def test_yarn_ramps_from_kept_to_interpolated_by_wavelength_and_tempers_attention():
    # dim 16, base 10000, trained 256: the frequency turning 32 times over 256 tokens sits at index
    # 16·ln(256/(32·2π))/(2·ln 10000) = 0.21 → floor 0; the one turning once at 16·ln(256/2π)/(2·ln 10000) = 3.22
    # → ceil 4. The ramp is i/4: index 0 kept, index 2 halfway (0.75 of itself at factor 2), index 4+ halved.
    inv_freq = _inv_freq()
    scaled, attention = make_method("yarn(factor=2)").frequencies(inv_freq, TRAINED)
    share = torch.tensor([1.0, 0.875, 0.75, 0.625, 0.5, 0.5, 0.5, 0.5])
    torch.testing.assert_close(scaled, inv_freq * share)
    assert math.isclose(attention, 0.1 * math.log(2) + 1)


def test_yarn_matches_transformers_yarn_rope_type():
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=TRAINED * 3,
                         rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 3.0,
                                          "original_max_position_embeddings": TRAINED})  # fmt: skip
    reference, reference_scaling = ROPE_INIT_FUNCTIONS["yarn"](config, None)
    scaled, attention = make_method("yarn(factor=3)").frequencies(_inv_freq(), TRAINED)
    torch.testing.assert_close(scaled, reference.float(), rtol=1e-5, atol=1e-7)
    assert math.isclose(attention, reference_scaling, rel_tol=1e-6)


def _relative(i: int, j: int, window: int, group: int) -> int:
    """SelfExtend's relative position, written out: exact inside the window, grouped beyond it."""
    if i - j < window:
        return i - j
    return (i // group + window - window // group) - j // group


def test_self_extend_relative_positions_by_hand():
    # W = 4, G = 2, query at 10: a neighbour at 7 is 3 away; at 6 the grouped distance 10//2 + 4 − 2 − 3 = 4
    # continues the neighbours' 3, the one at 5 is 7 − 2 = 5 away, the first token 7 away, not 10.
    assert [_relative(10, j, 4, 2) for j in (10, 7, 6, 5, 1, 0)] == [0, 3, 4, 5, 7, 7]
    # The largest distance on a 6-token input stays below a trained window L when 6 ≤ (L − W)·G + W.
    method = make_method("self-extend(factor=2,window=4)")
    assert method.extended_window(8) == (8 - 4) * 2 + 4


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_self_extend_attention_scores_each_pair_at_its_grouped_distance(fused, monkeypatch):
    monkeypatch.setattr(self_extend, "FUSED_ON_CPU", fused)
    torch.manual_seed(1)
    # dim = total: the identity values below then fit flash attention's single head size.
    window, group, total, dim = 4, 2, 12, 12
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2).float() / dim))
    plain_q, plain_k = torch.randn(total, dim), torch.randn(total, dim)
    grouping = _Grouping(inv_freq, group, window)

    def at(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return grouping.rotate(x, positions)

    positions = torch.arange(total)
    query, key = at(plain_q, positions), at(plain_k, positions)
    values = torch.eye(total)  # the output rows are then the attention weights themselves
    scaling = dim**-0.5
    weights = grouping(query[None, None], key[None, None], values[None, None], scaling)[0, :, 0]
    expected = torch.full((total, total), float("-inf"))
    for i in range(total):
        for j in range(i + 1):
            # Rotating both at (p, p − distance) scores the pair at that distance (RoPE is relative).
            distance = _relative(i, j, window, group)
            q = at(plain_q[i : i + 1], torch.tensor([distance]))
            expected[i, j] = (q @ plain_k[j]).item() * scaling
    torch.testing.assert_close(weights, torch.softmax(expected, dim=-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("total", "steps", "window"), [(700, 700, 64), (700, 37, 64), (700, 1, 64), (90, 90, 128)]
)
def test_self_extend_fused_parts_equal_the_merged_score_maps(total, steps, window, dtype):
    """The flash parts (neighbour band, far keys read by every query, the far band's masked edge) merged by
    log-sum-exp give the paper's one softmax over both maps: a prompt, a question after a cache, one decoded
    token, and an input shorter than the window; 6 query heads sharing 2 key heads."""
    torch.manual_seed(total + steps)
    dim = 16
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2).float() / dim))
    grouping = _Grouping(inv_freq, 3, window)
    query = torch.randn(1, 6, steps, dim, dtype=dtype)
    key, value = torch.randn(1, 2, total, dim, dtype=dtype), torch.randn(1, 2, total, dim, dtype=dtype)
    fused = grouping.attend_fused(query, key, value, dim**-0.5)
    eager = grouping.attend_eager(query, key, value, dim**-0.5)
    assert fused.shape == eager.shape == (1, steps, 6, dim)
    tolerance = 2e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(fused.float(), eager.float(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(
    "spec", ["pi(factor=1)", "ntk(factor=0.5)", "yarn(factor=1)", "self-extend(factor=1)"]
)
def test_a_factor_of_one_or_less_is_one_line(spec):
    with pytest.raises(UsageError, match="factor must be above 1") as raised:
        make_method(spec)
    assert "\n" not in str(raised.value)


def test_other_bad_parameters_are_one_line():
    with pytest.raises(UsageError, match="whole number"):
        make_method("self-extend(factor=2.5)")
    with pytest.raises(UsageError, match="neighbour window 512 must be below"):
        make_method("self-extend(window=512)").check_backend(_backend())
    with pytest.raises(UsageError, match="beta_slow < beta_fast"):
        make_method("yarn(beta_fast=1,beta_slow=2)")


@pytest.mark.parametrize("spec", METHODS)
def test_a_model_without_rotary_positions_is_refused(spec):
    from transformers import GPT2Config, GPT2LMHeadModel

    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=256)
    backend = HFBackend(GPT2LMHeadModel(config).eval(), tokenizer, name="tiny-gpt2", revision="test")
    with pytest.raises(UsageError, match="has none") as raised:
        make_method(spec).check_backend(backend)
    assert "\n" not in str(raised.value)


def test_the_claimed_windows():
    assert make_method("pi(factor=2)").extended_window(8192) == 16384
    assert make_method("ntk(factor=1.5)").extended_window(8192) == 12288
    assert make_method("yarn(factor=4)").extended_window(8192) == 32768
    assert make_method("self-extend").extended_window(8192) == (8192 - 1024) * 4 + 1024
    assert make_method("lambda").extended_window(8192) == 8 * 8192
    assert make_method("full").extended_window(8192) is None


def test_the_plan_refuses_a_length_past_every_claimed_window():
    backend = _backend()
    task = make_task("niah(max_new_tokens=4)")
    config = RunConfig(tasks=["niah(max_new_tokens=4)"], lengths=[2 * TRAINED], methods=["full", "pi"])
    check_plan([task], [make_method("full"), make_method("pi(factor=2)")], config, backend)
    config = RunConfig(tasks=["niah(max_new_tokens=4)"], lengths=[2 * TRAINED + 1], methods=["full", "pi"])
    with pytest.raises(UsageError, match=f"length {2 * TRAINED + 1} is above the longest window") as raised:
        check_plan([task], [make_method("full"), make_method("pi(factor=2)")], config, backend)
    assert "by pi," in str(raised.value) and "\n" not in str(raised.value)
    # The widest claim decides: a wider method in the same plan lets the length through.
    check_plan([task], [make_method("pi(factor=2)"), make_method("yarn(factor=3)")], config, backend)


def test_every_row_says_whether_its_length_is_past_the_trained_window():
    from longscope.core import Sample, Turn
    from longscope.plan import Prepared, WorkItem
    from longscope.rows import skipped

    backend = _backend()
    task = make_task("niah(max_new_tokens=4)")
    sample = Sample(id="s", task="niah", context="", turns=(Turn(question="q", answers=("a",)),),
                    template="{context}{question}", max_new_tokens=4, metadata={})  # fmt: skip
    for length, past in ((TRAINED, False), (TRAINED + 1, True)):
        item = WorkItem(task=task, length=length, depth=0.5, seed=0, method=make_method("full"))
        (row,) = skipped(Prepared(item, sample, "why"), backend)
        assert row.past_window is past

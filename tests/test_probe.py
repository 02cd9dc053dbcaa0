"""The loss-by-position probe: its NLL against a direct full-sequence computation, with and without a
position method, its bins, and its refusals."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from conftest import tiny_llama, tiny_tokenizer

from longscope.core import UsageError
from longscope.methods import make_method
from longscope.probe import essay_ids, probe, token_nll

TRAINED = 128


@functools.cache
def _backend():
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, max_position_embeddings=TRAINED)
    return HFBackend(model, tokenizer, name="tiny-llama-128", revision="test")


def _direct(ids: list[int]) -> torch.Tensor:
    """NLL of each token from one plain forward pass over the whole sequence."""
    with torch.no_grad():
        logits = _backend().model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    return -logprobs.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_the_nll_is_the_direct_computation_in_any_chunking():
    ids = essay_ids(_backend(), 100, 0)
    assert len(ids) == 100
    expected = _direct(ids)[1:]  # the probe starts at position 2
    for chunk in (7, 1024):
        got = token_nll(_backend(), ids, make_method("full"), chunk=chunk)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_under_pi_the_nll_is_the_direct_computation_with_frequencies_divided():
    backend = _backend()
    ids = essay_ids(backend, 2 * TRAINED, 1)
    rotary = backend.model.model.rotary_emb
    original = rotary.inv_freq
    rotary.inv_freq = original / 2
    try:
        expected = _direct(ids)[1:]
    finally:
        rotary.inv_freq = original
    got = token_nll(backend, ids, make_method("pi(factor=2)"), chunk=64)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (got - _direct(ids)[1:]).abs().max() > 1e-3  # the method did change the reading


def test_curves_average_samples_per_bin_and_flag_lengths_past_the_window():
    backend = _backend()
    curves = probe(
        backend, [64, 2 * TRAINED], [make_method("full"), make_method("pi")], samples=2, bin_tokens=32
    )
    assert [(c.method, c.length) for c in curves] == [("full", 64), ("pi", 64), ("full", 256), ("pi", 256)]
    first = curves[0]
    assert first.tokens == [2 * 30, 2 * 32] and not first.past_window and curves[2].past_window
    by_hand = [_direct(essay_ids(backend, 64, sample))[1:] for sample in (0, 1)]
    # Positions 2..31 (30 predictions) fall in the first bin, 32..63 in the second.
    bins = [float(torch.cat([n[:30] for n in by_hand]).double().mean()),
            float(torch.cat([n[30:] for n in by_hand]).double().mean())]  # fmt: skip
    assert first.nll == pytest.approx(bins, rel=1e-4)
    assert math.isclose(first.mean, float(torch.cat(by_hand).double().mean()), rel_tol=1e-4)


def test_the_probe_refuses_what_it_cannot_measure():
    backend = _backend()
    with pytest.raises(UsageError, match="above the longest window"):
        probe(backend, [2 * TRAINED + 1], [make_method("full"), make_method("pi")])
    with pytest.raises(UsageError, match="in-model methods only"):
        probe(backend, [64], [_prompt_method()])


def _prompt_method():
    from longscope.methods import METHODS, PromptMethod

    name = next(n for n, cls in METHODS.items() if issubclass(cls, PromptMethod))
    return make_method(name)


def test_the_probe_command_writes_curves_and_refuses_bad_input_in_one_line(tmp_path, tiny_model_dir):
    import json

    from conftest import run_cli

    out = tmp_path / "ppl.json"
    done = run_cli("probe", "ppl", "--model", f"hf:{tiny_model_dir}", "--lengths", "256", "--methods",
                   "full,pi(factor=3)", "--samples", "1", "--bin", "64", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    curves = json.loads(out.read_text())["curves"]
    assert {c["method"] for c in curves} == {"full", "pi(factor=3.0)"} and all(c["nll"] for c in curves)
    bad = run_cli("probe", "ppl", "--model", f"hf:{tiny_model_dir}", "--methods", "pi(factor=1)")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "factor" in bad.stderr

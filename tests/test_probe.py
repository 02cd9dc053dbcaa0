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
from longscope.probe import essay_ids, probe, reading_ids, token_nll

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
    ids, bos = reading_ids(_backend(), 100, 0)
    assert bos and len(ids) == 100 and ids[0] == _backend().tokenizer.bos_token_id
    assert ids[1:] == essay_ids(_backend(), 99, 0)
    expected = _direct(ids)  # every token after the BOS, the essay's first included
    for chunk in (7, 1024):
        got = token_nll(_backend(), ids, make_method("full"), chunk=chunk)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_position_one_is_the_first_essay_token_predicted_from_the_bos_alone():
    backend = _backend()
    ids, _ = reading_ids(backend, 50, 0)
    with torch.no_grad():
        alone = backend.model(input_ids=torch.tensor([ids[:1]])).logits[0, 0].float()
    by_hand = float(torch.logsumexp(alone, dim=-1) - alone[ids[1]])  # -log softmax at the essay's first token
    for method in ("full", "pi(factor=2)", "self-extend(factor=2,window=16)"):
        got = token_nll(backend, ids, make_method(method), chunk=16)
        assert float(got[0]) == pytest.approx(by_hand, rel=1e-4), method


def test_under_pi_the_nll_is_the_direct_computation_with_frequencies_divided():
    backend = _backend()
    ids, _ = reading_ids(backend, 2 * TRAINED, 1)
    rotary = backend.model.model.rotary_emb
    original = rotary.inv_freq
    rotary.inv_freq = original / 2
    try:
        expected = _direct(ids)
    finally:
        rotary.inv_freq = original
    got = token_nll(backend, ids, make_method("pi(factor=2)"), chunk=64)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (got - _direct(ids)).abs().max() > 1e-3  # the method did change the reading


def test_curves_average_samples_per_bin_and_flag_lengths_past_the_window():
    backend = _backend()
    curves = probe(
        backend, [64, 2 * TRAINED], [make_method("full"), make_method("pi")], samples=2, bin_tokens=32
    )
    assert [(c.method, c.length) for c in curves] == [("full", 64), ("pi", 64), ("full", 256), ("pi", 256)]
    first = curves[0]
    assert first.bos and first.tokens == [2 * 31, 2 * 32] and not first.past_window and curves[2].past_window
    by_hand = [_direct(reading_ids(backend, 64, sample)[0]) for sample in (0, 1)]
    # Positions 1..31 (31 predictions, the BOS at 0 has none) fall in the first bin, 32..63 in the second.
    bins = [float(torch.cat([n[:31] for n in by_hand]).double().mean()),
            float(torch.cat([n[31:] for n in by_hand]).double().mean())]  # fmt: skip
    assert first.nll == pytest.approx(bins, rel=1e-4)
    assert math.isclose(first.mean, float(torch.cat(by_hand).double().mean()), rel_tol=1e-4)


def test_without_a_bos_the_essay_starts_at_position_zero_unpredicted():
    import types

    backend = _backend()
    no_bos = types.SimpleNamespace(encode=backend.encode, tokenizer=types.SimpleNamespace(bos_token_id=None))
    ids, bos = reading_ids(no_bos, 40, 0)
    assert not bos and ids == essay_ids(backend, 40, 0)
    # The essay's second token (position 1) is predicted from its first alone, inside the prefill.
    got = token_nll(backend, ids, make_method("full"), chunk=8)
    torch.testing.assert_close(got, _direct(ids), rtol=1e-4, atol=1e-4)


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


# -- the report section ---------------------------------------------------------------------------------


def _point(length, score, nll):
    from longscope.report.probe import Point

    return Point(length=length, score=score, n=4, tail_nll=nll, read_at=length)


def test_the_verdict_names_where_nll_and_score_disagree():
    from longscope.report.probe import Comparison

    def verdict(*points):
        return Comparison("m", list(points)).verdict()

    hides, disagree = verdict(_point(128, 80.0, 2.00), _point(256, 40.0, 2.05))
    assert disagree and hides.startswith(
        "disagree: NLL holds while the score falls 40.0 points from 128 to 256"
    )
    overstates, disagree = verdict(_point(128, 80.0, 2.00), _point(256, 75.0, 2.50))
    assert disagree and overstates.startswith("disagree: NLL rises 0.500 nats while the score holds")
    assert verdict(_point(128, 80.0, 2.0), _point(256, 40.0, 2.5))[0].startswith("agree: both worsen")
    # Only lengths with both measurements count: the middle one has no score and is passed over.
    assert verdict(_point(128, 80.0, 2.0), _point(192, None, 9.0), _point(256, 78.0, 2.02))[0].startswith(
        "agree: both hold from 128 to 256"
    )
    assert verdict(_point(128, 80.0, 2.0))[1] is False
    # A score at 0 at both ends says nothing either way, whatever the NLL does.
    assert verdict(_point(128, 0.0, 2.0), _point(256, 0.0, 3.0)) == (
        "no contrast: the score is 0 at both ends from 128 to 256 (score 0.0 → 0.0, far-end NLL 2.000 → 3.000)",
        False,
    )


def test_far_end_nll_reads_the_last_quarter_from_a_reading_at_least_that_long():
    from longscope.report.probe import tail_nll

    curve = {"bin_tokens": 32, "nll": [4.0, 3.0, 2.0, 1.0], "tokens": [31, 32, 32, 32]}
    assert tail_nll(curve, 128) == pytest.approx(1.0)  # positions 96..127: the last bin
    # At 64 the last quarter is 48..63, inside the second bin; the reading's prefix serves.
    assert tail_nll(curve, 64) == pytest.approx(3.0)
    # At 100 the quarter 75..99 touches bins 2 (64..95) and 3 (96..127), weighted by their tokens.
    assert tail_nll(curve, 100) == pytest.approx((2.0 * 32 + 1.0 * 32) / 64)


@pytest.mark.slow
def test_the_report_draws_the_probe_beside_the_scores_of_the_same_run(tmp_path):
    import json

    from conftest import run_cli

    from longscope.backends import resolve
    from longscope.report.commands import write_report
    from longscope.runner import RunConfig, run

    model_dir = tmp_path / "tiny-256"
    tokenizer = tiny_tokenizer()
    # 256 positions: room for a needle task's prompt at the trained window.
    tiny_llama(tokenizer, max_position_embeddings=256).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    uri = f"hf:{model_dir}"
    folder = tmp_path / "run"
    config = RunConfig(model=uri, suite=None, tasks=["niah(max_new_tokens=3)"], lengths=[256, 512], samples=2,
                       methods=["full", "pi(factor=2)"])  # fmt: skip
    run(config, folder, backend=resolve(uri), show_progress=False)
    # A run directory as --out: the run's model, lengths and in-model methods, into the file the report reads.
    done = run_cli("probe", "ppl", "--out", str(folder), "--samples", "1", "--bin", "64")
    assert done.returncode == 0, done.stderr
    payload = json.loads((folder / "probe-ppl.json").read_text())
    assert {(c["method"], c["length"]) for c in payload["curves"]} == {
        ("full", 256),
        ("full", 512),
        ("pi", 256),
        ("pi", 512),
    }
    assert payload["bos_token"] == "<s>" and all(c["bos"] for c in payload["curves"])

    page = write_report(folder).read_text()
    assert 'id="probe"' in page and 'id="fig-probe"' in page and "NLL against score" in page
    summary = json.loads((folder / "summary.json").read_text())["probe"]
    by_method = {entry["method"]: entry for entry in summary["methods"]}
    pi = {p["length"]: p for p in by_method["pi"]["points"]}
    rows = [r for r in load_rows(folder) if r.method == "pi" and r.length == 512 and r.status == "ok"]
    assert pi[512]["n"] == len(rows) == 2
    assert pi[512]["score"] == pytest.approx(100 * sum(r.score for r in rows) / 2)
    curve = next(c for c in payload["curves"] if c["method"] == "pi" and c["length"] == 512)
    # 384..511: the last two 64-token bins, 64 predictions each.
    assert pi[512]["tail_nll"] == pytest.approx((curve["nll"][6] + curve["nll"][7]) / 2)
    # full has no score past its window (skipped), so its verdict rests on one length only.
    assert by_method["full"]["points"][-1]["score"] is None and not by_method["full"]["disagree"]
    assert by_method["pi"]["verdict"].split(":")[0] in ("agree", "disagree", "no contrast")


def load_rows(folder):
    from longscope.store import RunStore

    store = RunStore.open(folder, create=False)
    try:
        return store.results()
    finally:
        store.close()

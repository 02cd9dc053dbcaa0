"""The bad inputs of the sparse prefills and the seed methods through the command line: one line, exit 2, before
any sample runs and before the run directory is made."""

from __future__ import annotations

import pytest
from conftest import run_cli, tiny_tokenizer
from reliability.test_bad_input import assert_one_line_refusal, invoke


@pytest.fixture(scope="module")
def sliding_model_dir(tmp_path_factory):
    """A tiny random Mistral whose layers attend through a sliding window, saved like any checkpoint."""
    from transformers import MistralConfig, MistralForCausalLM

    folder = tmp_path_factory.mktemp("tiny-mistral")
    tokenizer = tiny_tokenizer("chatml")
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=256,
                           max_position_embeddings=8192, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    MistralForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


CASES = [
    # a chunk or block that does not fit the context
    (["--methods", "longheads(block=4096)"], "niah", "do not fit the context"),
    (["--methods", "infllm(sinks=64,block=512,local=512)"], "niah", "do not fit the context"),
    # a method that needs turns, on independent turns or on a single-turn task
    (["--methods", "sirllm:0.5"], "niah(questions=2)", "--mode multi-turn"),
    (["--methods", "sirllm:0.5", "--mode", "multi-turn"], "niah", "single turn"),
    # amounts and parameters a method cannot take
    (["--methods", "a-shape:0.5"], "niah", "takes no ratio or budget"),
    (["--methods", "vertical-slash(slash=0)"], "niah", "slash"),
    (["--methods", "lazyllm(stages=0):0.5"], "niah", "stages must be at least 1"),
]


@pytest.mark.parametrize("flags, task, contains", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_seed_or_sparse_method_that_cannot_run_is_one_line_before_any_sample(
    tmp_path, monkeypatch, capsys, tiny_model_dir, flags, task, contains
):
    out_dir = tmp_path / "run"
    argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", task, "--lengths", "512", "--no-progress",
            "--out", str(out_dir), *flags]  # fmt: skip
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains=contains)
    assert not out_dir.exists()


@pytest.mark.parametrize("method", ["a-shape", "vertical-slash", "lazyllm:0.5"])
def test_an_attention_the_method_cannot_replace_is_one_line(
    tmp_path, monkeypatch, capsys, sliding_model_dir, method
):
    out_dir = tmp_path / "run"
    argv = ["run", "--model", f"hf:{sliding_model_dir}", "--tasks", "niah", "--lengths", "512", "--no-progress",
            "--out", str(out_dir), "--methods", method]  # fmt: skip
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains="sliding windows")
    assert not out_dir.exists()


@pytest.mark.slow
def test_the_real_command_refuses_them_in_one_line(tmp_path, tiny_model_dir, sliding_model_dir):
    """Two of the cases above through a fresh process, as a user runs them."""
    for model, flags in (
        (sliding_model_dir, ["--methods", "tri-shape"]),
        (tiny_model_dir, ["--methods", "sirllm:0.5", "--mode", "multi-turn"]),
    ):
        done = run_cli("run", "--model", f"hf:{model}", "--tasks", "niah", "--lengths", "512", "--no-progress",
                       "--out", str(tmp_path / "run"), *flags, timeout=240)  # fmt: skip
        assert_one_line_refusal(done.returncode, done.stdout, done.stderr)
    assert sorted(tmp_path.iterdir()) == []

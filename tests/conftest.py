"""Shared fixtures: tiny tokenizers trained in the test run and tiny random Llamas built from a config."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from longscope.haystack import corpus

SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|eot_id|>", "<s>", "</s>",
]  # fmt: skip

TEMPLATES = {
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama3": (
        "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "inst": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
        "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    ),
    "plain": None,
}


def _training_text() -> list[str]:
    essays = "".join(corpus("essay").sentences)
    extra = "The secret number for brave-otter is 1234567. What are all the secret codes for 9f3a-11bc?"
    return [essays, "".join(corpus("noise").sentences) * 3, extra * 20]


@functools.cache
def tiny_tokenizer(template: str = "chatml", style: str = "bytelevel"):
    """A BPE tokenizer trained here on the built-in corpora: byte-level (GPT/Llama-3 style) or
    metaspace (SentencePiece/Llama-2 style), with one of several chat templates."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if style == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()[]\n ")
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=["<unk>", *SPECIALS], initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(_training_text(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<|endoftext|>"
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIALS})
    if TEMPLATES[template] is not None:
        fast.chat_template = TEMPLATES[template]
    return fast


def tiny_llama(tokenizer, *, layers: int = 2, seed: int = 0, **shape):
    """A tiny random Llama; ``shape`` overrides config fields (wider heads, a short trained window...)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    fields = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=8192)  # fmt: skip
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_hidden_layers=layers,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**fields, **shape},
    )
    return LlamaForCausalLM(config).eval()


def tiny_backend(template: str = "chatml", style: str = "bytelevel"):
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer(template, style)
    return HFBackend(tiny_llama(tokenizer), tokenizer, name=f"tiny-llama-{template}-{style}", revision="test")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own sample cache, so nothing leaks between tests or from the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LONGSCOPE_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama saved like any transformers checkpoint, for `--model hf:DIR`."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = tiny_tokenizer("chatml")
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real `longscope` entry point in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from longscope.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


@functools.cache
def shared_tiny_backend(template: str = "chatml", style: str = "bytelevel"):
    """One tiny backend per tokenizer for tests that only build samples (never mutate it)."""
    return tiny_backend(template, style)


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory):
    """A real llama-cpp-python server with the bundled GGUF on a free loopback port, for the whole session, as
    ``.url``, ``.model`` (the GGUF path) and ``.log``; the test is skipped where llama-cpp-python[server] is not
    installed (make setup)."""
    pytest.importorskip(
        "llama_cpp.server.app", reason="llama-cpp-python[server] is not installed (make setup)"
    )
    import httpx

    from longscope.backends.smollm2 import gguf_path

    model = str(gguf_path())
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield SimpleNamespace(url=url, model=model, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prompt_tokens(backend, sample, turn: int = 0) -> int:
    """The whole rendered prompt counted in one piece by the tokenizer itself: the independent check of exact
    lengths (the backend's own counter may count long texts piecewise)."""
    prompt = backend.render(sample.messages(turn), sample.turns[turn].answer_prefix)
    return len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def assert_refused(spec: str, length: int, message: str) -> None:
    """A bad task parameter is refused with a UsageError naming it, up front by check() and again by build()."""
    import re

    from longscope.core import UsageError
    from longscope.tasks import make_task

    task = make_task(spec)
    with pytest.raises(UsageError, match=re.escape(message)):
        task.check(tiny_backend(), length)
    with pytest.raises(UsageError, match=re.escape(message)):
        task.build(tiny_backend(), length, 0.5 if task.uses_depth else None, 0)

"""The llama.cpp backend on the bundled GGUF: exact lengths in its own tokenizer, generation, identity, bad files."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from longscope.backends import llamacpp as llamacpp_module
from longscope.backends import parse_uri, resolve
from longscope.backends.llamacpp import LlamaCppBackend, _cores
from longscope.backends.reasoning import strip_reasoning
from longscope.core import GenerationRequest, UsageError
from longscope.runner import RunConfig, run
from longscope.store import DB_NAME
from longscope.tasks import make_task

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make setup installs it)")


@pytest.fixture(scope="module")
def gguf():
    from longscope.backends.smollm2 import gguf_path

    return gguf_path()


@pytest.fixture(scope="module")
def backend(gguf):
    # One thread: on a shared two-core machine, llama.cpp threads that spin at barriers while a neighbour
    # holds the other core make every step many times slower. Users get one thread per core.
    return LlamaCppBackend(gguf, threads=1)


QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_files_that_are_not_gguf_fail_before_anything_loads(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf at all")
    for uri, message in (
        (f"gguf:{fake}", "is not a GGUF file"),
        (f"gguf:{tmp_path / 'missing.gguf'}", "no GGUF file at"),
        (f"gguf:{tmp_path}", "no GGUF file at"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_uri(uri)
        with pytest.raises(UsageError, match=message):
            resolve(uri)
    # The magic bytes alone do not make a model: llama.cpp's own refusal is one line too.
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(UsageError, match="llama.cpp cannot load"):
        resolve(f"gguf:{truncated}")


def test_resolve_loads_the_file_with_a_thread_per_core_and_no_weights_until_asked(gguf):
    loaded = resolve(f"gguf:{gguf}")
    assert isinstance(loaded, LlamaCppBackend) and loaded.threads == _cores() and loaded.n_ctx == 0


def test_identity_is_the_file_name_and_its_sha256(backend, gguf):
    assert backend.kind == "gguf" and backend.model_name == gguf.name
    assert backend.model_revision == "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert backend.context_window == 8192 and backend.capabilities.max_concurrency == 1
    assert backend.capabilities.exact_tokens and not backend.capabilities.in_process_model


def test_big_files_are_hashed_by_their_ends_and_size_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(llamacpp_module, "_PARTIAL_ABOVE", 1000)
    monkeypatch.setattr(llamacpp_module, "_PARTIAL_SPAN", 100)
    big = tmp_path / "big.gguf"
    body = bytes(range(256)) * 20
    big.write_bytes(body)
    expected = hashlib.sha256(body[:100] + body[-100:] + str(len(body)).encode()).hexdigest()
    assert llamacpp_module.file_identity(big) == f"sha256-first-last-64MiB+size:{expected}"
    # A change in the middle is not seen (that is the trade-off), one at either end is.
    big.write_bytes(body[:500] + b"x" + body[501:])
    assert llamacpp_module.file_identity(big).endswith(expected)
    big.write_bytes(b"x" + body[1:])
    assert not llamacpp_module.file_identity(big).endswith(expected)


def test_the_chat_template_renders_as_llama_cpp_renders_it(backend):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(backend.chat_template, backend.eos_token, backend.bos_token)
    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    for msgs in (QUESTION, messages):
        assert backend.render(msgs, "Paris is") == formatter(messages=msgs).prompt + "Paris is"
    rendered = backend.render(QUESTION)
    assert rendered.startswith("<|im_start|>system") and rendered.endswith("<|im_start|>assistant\n")
    ids = backend.encode(rendered)
    # Special tokens in the template are parsed into single ids; no BOS is added (this vocabulary asks none).
    assert ids[0] == backend.encode("<|im_start|>")[0] and len(backend.encode("<|im_start|>")) == 1
    assert not backend.adds_bos and backend.count_tokens(rendered) == len(ids)
    assert "<|im_start|>" in backend.special_token_strings()
    assert backend.decode(backend.encode("naïve café 東京")) == "naïve café 東京"


def test_a_sample_built_with_the_gguf_tokenizer_is_exactly_its_length(backend):
    for length, depth in ((1024, 0.5), (2000, 0.0)):
        sample = make_task("niah").build(backend, length, depth, seed=1)
        prompt = backend.render(sample.messages(), sample.turns[0].answer_prefix)
        assert backend.count_tokens(prompt) + sample.max_new_tokens == length
        assert sample.metadata["realised_tokens"] == length
        assert sample.metadata["tokenizer"] == backend.tokenizer_fingerprint()


def test_generation_is_greedy_timed_and_budgeted(backend):
    first = backend.generate(GenerationRequest(messages=QUESTION, max_new_tokens=12))
    again = backend.generate(GenerationRequest(messages=QUESTION, max_new_tokens=12))
    assert "Paris" in first.text and first.text == again.text
    assert first.input_tokens == backend.count_tokens(backend.render(QUESTION))
    assert first.prefill_s > 0 and first.decode_s > 0 and first.wall_s >= first.prefill_s + first.decode_s
    # Held: the prompt and every generated token fed back (the end-of-turn token is picked, never fed).
    assert first.finish_reason == "stop"
    assert first.kv_bytes == (first.input_tokens + first.output_tokens) * backend._kv_bytes_per_token
    assert first.peak_memory_bytes > 0 and backend.n_ctx == 512

    budget = backend.generate(
        GenerationRequest(messages=[{"role": "user", "content": "Write a long story."}], max_new_tokens=5)
    )
    assert budget.output_tokens == 5 and budget.finish_reason == "length"


def test_answer_prefix_stop_strings_and_seeded_sampling(backend):
    counting = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    stopped = backend.generate(
        GenerationRequest(messages=counting, answer_prefix="1, 2,", max_new_tokens=40, stop=(" 6",))
    )
    assert (
        stopped.text.startswith(" 3, 4") and stopped.text.endswith("5,") and stopped.finish_reason == "stop"
    )
    story = [{"role": "user", "content": "Tell me a story about a fox."}]
    hot = [
        backend.generate(
            GenerationRequest(messages=story, max_new_tokens=16, temperature=1.0, seed=seed)
        ).text
        for seed in (7, 7, 8)
    ]
    assert hot[0] == hot[1] and hot[0] != hot[2]


def test_the_context_grows_with_the_requests(backend):
    backend.generate(GenerationRequest(messages=QUESTION, max_new_tokens=2))
    small = backend.n_ctx
    long = [{"role": "user", "content": "The river runs wide. " * 120 + "Where does the river run?"}]
    backend.generate(GenerationRequest(messages=long, max_new_tokens=2))
    assert small == 512 and backend.n_ctx == 1024
    with pytest.raises(ValueError, match="exceeds the model window of 8192"):
        backend.generate(GenerationRequest(messages=[{"role": "user", "content": "word " * 9000}]))


def test_reasoning_traces_are_stripped_before_scoring():
    assert strip_reasoning("<think>the key is near the end</think>\n\n1234567") == "1234567"
    assert strip_reasoning("It is <think>hmm</think>42 and <thinking>ok</thinking>43") == "It is 42 and 43"
    assert strip_reasoning("<think>still thinking when the budget ran out") == ""
    assert strip_reasoning("  <think>a</think> b <think>c") == "b <think>c"
    assert strip_reasoning("reasoning that the template opened</think> 99") == "99"
    assert strip_reasoning(" plain answer, no tags ") == " plain answer, no tags "


def test_a_run_through_the_gguf_backend_records_identity_tokens_and_timings(backend, tmp_path):
    config = RunConfig(model=f"gguf:{backend.path}", tasks=["niah(max_new_tokens=16)"], lengths=[512],
                       depths=[0.5], samples=2)  # fmt: skip
    summary = run(config, tmp_path, backend=backend, show_progress=False)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        rows = db.execute(
            "SELECT status, backend, model, input_tokens, output_tokens, prefill_s, decode_s, realised_tokens "
            "FROM results"
        ).fetchall()
        model_id = db.execute("SELECT value FROM meta WHERE key='model'").fetchone()[0]
    assert len(rows) == 2 and summary.failed == 0
    for status, kind, model, input_tokens, output_tokens, prefill_s, decode_s, realised in rows:
        assert (status, kind, model) == ("ok", "gguf", backend.path.name)
        assert input_tokens + 16 == realised == 512 and 0 < output_tokens <= 16
        assert prefill_s > 0 and decode_s >= 0
    assert backend.model_revision in model_id

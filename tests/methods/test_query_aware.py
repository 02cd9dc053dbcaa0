"""Query-aware compression: the question is prefilled and compressed with the context, and the answers equal
kvpress's own pipeline given the question appended to its context (as its evaluation's --query_aware does)."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import run_cli, tiny_backend, tiny_llama, tiny_tokenizer

from longscope.core import GenerationRequest, Sample, Turn, UsageError
from longscope.methods import make_method
from longscope.methods.kv import _press_lookup as lookup

CONTEXT = " ".join(f"The secret number for item {i} is {i * 7919 % 10007}." for i in range(40))
QUESTIONS = ("what is the secret number for item 7", "which item has the number 42")


def content(question: str) -> str:
    return f"Context: {CONTEXT}\nQuestion: {question}?"


def request(question: str, new_tokens: int = 6) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": content(question)}], max_new_tokens=new_tokens, context=CONTEXT
    )


SAMPLE = Sample(
    id="s", task="t", context=CONTEXT, template="Context: {context}\nQuestion: {question}?",
    turns=tuple(Turn(question=q, answers=("x",)) for q in QUESTIONS), max_new_tokens=6,
)  # fmt: skip


def ask(backend, spec: str, turn: int = 0, mode: str = "independent"):
    """One answer through the method's own solver (what the executors call); the solver, for its session."""
    solver = make_method(spec).solver(backend, mode)
    return solver.answer(SAMPLE, turn, SAMPLE.request(turn)), solver


def context_tokens(backend) -> int:
    prompt = backend.render(request(QUESTIONS[0]).messages)
    return len(backend.encode(prompt[: prompt.index(CONTEXT) + len(CONTEXT)]))


@pytest.fixture(scope="module")
def wide():
    """64-wide heads, as in test_presses: AdaKV's masking key needs them to hide an entry from every query."""
    from longscope.backends.hf import HFBackend

    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, hidden_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=64,
                       max_position_embeddings=4096)  # fmt: skip
    return HFBackend(model, tokenizer, name="wide-llama", revision="test")


def pipeline(model, tokenizer):
    from transformers import pipeline as make

    lookup.kvpress()  # registers kvpress's pipeline
    return make("kv-press-text-generation", model=model, tokenizer=tokenizer, device="cpu")


def kvpress_query_aware(backend, question: str, press) -> str:
    """kvpress's evaluation with --query_aware: context + question as the context, an empty question."""
    pipe = pipeline(backend.model, backend.tokenizer)
    return pipe(content(question), question="", press=press, max_new_tokens=6)["answer"]


@pytest.mark.parametrize(
    "spec",
    ["snapkv(query_aware=true):0.5", "tova(query_aware=true):0.75", "adakv(query_aware=true):0.5",
     "kvpress:ChunkKVPress(press=SnapKVPress,chunk_length=20,query_aware=true):0.5"],
)  # fmt: skip
def test_query_aware_answers_equal_kvpress_with_the_question_in_the_context(wide, spec):
    generation, solver = ask(wide, spec)
    prefilled = solver.session.state.context_tokens
    assert prefilled > context_tokens(wide) + 5  # the question went into the compressed prefill
    press = make_method(spec).make_press(prefilled)
    assert generation.text.strip() == kvpress_query_aware(wide, QUESTIONS[0], press).strip()


def test_query_aware_differs_from_compressing_the_context_alone(wide):
    """The check above can fail: selecting with the question in the window keeps other entries."""
    aware = ask(wide, "snapkv(query_aware=true,window_size=8):0.75")[1].session
    blind = ask(wide, "snapkv(window_size=8):0.75")[1].session
    assert aware.state.context_tokens > blind.state.context_tokens
    keys_aware = aware.state.cache.layers[0].keys
    keys_blind = blind.state.cache.layers[0].keys
    assert keys_aware.shape != keys_blind.shape or not torch.equal(keys_aware, keys_blind)


def test_each_question_prefills_its_own_context_in_multi_request(wide):
    solver = make_method("snapkv(query_aware=true):0.5").solver(wide, "multi-request")
    first = solver.answer(SAMPLE, 0, SAMPLE.request(0))
    second = solver.answer(SAMPLE, 1, SAMPLE.request(1))
    assert first.reused_tokens == 0 and second.reused_tokens == 0  # nothing shared across questions
    alone, _ = ask(wide, "snapkv(query_aware=true):0.5", turn=1)
    assert second.text == alone.text


def test_finch_runs_query_aware_and_equals_kvpress_finch(wide):
    """kvpress's evaluation adds a delimiter token to the tokenizer and the model's embeddings and puts it
    between context and question; longscope sizes Finch's window from the question instead. Same answers."""
    import kvpress

    method = make_method("finch:0.5")
    ours, solver = ask(wide, "finch:0.5")
    session = solver.session
    # Finch re-rotates the kept keys: the cache holds the kept entries only.
    assert session.state.layer_lengths == [method.kept(session.state.context_tokens)] * 2

    model, tokenizer = copy.deepcopy(wide.model), copy.deepcopy(wide.tokenizer)
    press = kvpress.FinchPress(compression_ratio=method.effective_ratio(session.state.context_tokens))
    press.update_model_and_tokenizer(model, tokenizer)
    text = content(QUESTIONS[0])
    end = text.index(CONTEXT) + len(CONTEXT)
    theirs = pipeline(model, tokenizer)(
        text[:end] + press.delimiter_token + text[end:], question="", press=press, max_new_tokens=6
    )["answer"]
    assert press.window_size == session.state.context_tokens - context_tokens(wide)
    assert ours.text.strip() == theirs.strip()


def test_query_aware_labels_round_trip():
    for spec in ("snapkv(query_aware=true):0.5", "kvpress:SnapKVPress(window_size=8,query_aware=true):0.5"):
        method = make_method(spec)
        assert method.query_aware and "query_aware=True" in method.label()
        assert make_method(method.label()) == method
    assert make_method("finch:0.5").query_aware


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("squeezed(query_aware=true):0.5", "unknown parameter 'query_aware'"),
        ("rag-bm25(query_aware=true)", "unknown parameter 'query_aware'"),
        ("kvpress:DecodingPress(base_press=KnormPress,target_size=64,query_aware=true)", "query_aware"),
        ("kvpress:FinchPress:0.5", "cannot run here without the question"),
        ("finch(query_aware=false):0.5", "add query_aware=true"),
    ],
)
def test_a_query_aware_setting_a_method_cannot_use_is_refused_in_one_line(spec, fragment):
    with pytest.raises(UsageError) as caught:
        make_method(spec)
    assert "\n" not in str(caught.value) and fragment in str(caught.value)


@pytest.mark.slow
def test_the_cli_refuses_query_aware_on_a_method_without_it_before_any_sample(tmp_path):
    result = run_cli("run", "--methods", "squeezed(query_aware=true):0.5", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "query_aware" in result.stderr
    assert not (tmp_path / "run").exists()


def test_tiny_backend_is_unchanged_by_finch():
    """Finch runs without adding a token to the tokenizer or a row to the embeddings."""
    backend = tiny_backend()
    rows = backend.model.get_input_embeddings().weight.shape[0]
    vocab = len(backend.tokenizer)
    ask(backend, "finch:0.5")
    assert backend.model.get_input_embeddings().weight.shape[0] == rows and len(backend.tokenizer) == vocab

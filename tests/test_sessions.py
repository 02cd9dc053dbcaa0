"""Shared-context sessions: the three modes, a row per turn, the cache restored between questions, bad input."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from conftest import run_cli, tiny_backend

from longscope.analysis.scores import series_label
from longscope.core import Capabilities, GenerationRequest, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.methods import make_method, parse_methods
from longscope.runner import RunConfig, run
from longscope.store import DB_NAME, RunStore
from longscope.tasks import TASKS
from longscope.tasks.base import Task


@dataclass(frozen=True)
class ThreeQuestions(Task):
    """Three facts in one haystack, one asked per turn."""

    name: ClassVar[str] = "three_questions"
    metric: ClassVar[str] = "contains_all"
    questions: int = 3
    max_new_tokens: int = 6

    @property
    def diffusion(self) -> float:
        return 0.1

    @property
    def scope(self) -> float:
        return 0.1

    def build(self, backend, length, depth, seed):
        facts = [("red", "4411"), ("blue", "7302"), ("green", "5150")]
        needles = [
            Needle(f"The code for {k} is {v}.", d) for (k, v), d in zip(facts, (0.2, 0.5, 0.8), strict=True)
        ]
        turns = [Turn(f"What is the code for {k}?", (v,), "Code:") for k, v in facts[: self.questions]]
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template="{context}\n\nQuestion: {question}",
            turns=turns,
            source=corpus("noise"),
            needles=needles,
        )


@pytest.fixture
def three_questions(monkeypatch):
    monkeypatch.setitem(TASKS._items, ThreeQuestions.name, ThreeQuestions)


class CountingBackend:
    """Counts full prefills: plain generate calls and session prefills of a new context."""

    def __init__(self, inner):
        self.inner = inner
        self.generates = 0
        self.sessions = 0
        for name in ("kind", "model_name", "model_revision", "context_window"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        self.generates += 1
        return self.inner.generate(request)

    def session(self, method):
        self.sessions += 1
        return self.inner.session(method)


def table(run_dir):
    with sqlite3.connect(run_dir / DB_NAME) as db:
        return db.execute(
            "SELECT key, turn, mode, method, status, prediction FROM results ORDER BY key"
        ).fetchall()


@pytest.mark.usefixtures("three_questions")
def test_every_mode_writes_a_row_per_turn_and_multi_request_answers_as_independent(tmp_path):
    backend = CountingBackend(tiny_backend())
    predictions = {}
    for mode in ("independent", "multi-request", "multi-turn"):
        config = RunConfig(model="hf:tiny", tasks=["three_questions"], lengths=[400], mode=mode)
        run(config, tmp_path / mode, backend=backend, show_progress=False)
        rows = table(tmp_path / mode)
        assert [r[1] for r in rows] == [0, 1, 2] and {r[2] for r in rows} == {mode}
        assert {r[4] for r in rows} == {"ok"}
        predictions[mode] = [r[5] for r in rows]
    # independent: three plain generations; multi-request and multi-turn: one session each, prefilled once.
    assert backend.generates == 3 and backend.sessions == 2
    assert predictions["multi-request"] == predictions["independent"]
    store = RunStore.open(tmp_path / "multi-turn", create=False)
    tasks = {series_label(r) for r in store.results()}
    store.close()
    assert tasks == {
        "three_questions · full · multi-turn",
        "three_questions · full · multi-turn · turn 2",
        "three_questions · full · multi-turn · turn 3",
    }


@pytest.mark.usefixtures("three_questions")
def test_a_resumed_multi_turn_run_adds_nothing(tmp_path):
    backend = CountingBackend(tiny_backend())
    config = RunConfig(model="hf:tiny", tasks=["three_questions"], lengths=[400], mode="multi-turn")
    run(config, tmp_path, backend=backend, show_progress=False)
    run(config, tmp_path, backend=backend, show_progress=False)
    assert backend.sessions == 1 and len(table(tmp_path)) == 3


def _requests(context: str, questions: list[str], conversation: bool = False):
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": f"{context}\n\nQuestion: {q}"}],
            max_new_tokens=5,
            context=context,
        )
        for q in questions
    ]


def test_the_shared_cache_is_unchanged_after_a_multi_request_question():
    backend = tiny_backend()
    context = "".join(corpus("noise").units(0, 12))
    session = backend.session(make_method("full"))
    first, second = _requests(context, ["Which colour?", "Which number comes next?"])
    session.ask(first)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in session.state.cache.layers]
    session.ask(second)
    after = [(layer.keys, layer.values) for layer in session.state.cache.layers]
    assert len(before) == len(after)
    for (k0, v0), (k1, v1) in zip(before, after, strict=True):
        assert torch.equal(k0, k1) and torch.equal(v0, v1)
    # and the same question asked again on the restored cache gives the same answer as a fresh prefill
    assert session.ask(second).text == backend.generate(second).text


def test_multi_turn_keeps_the_conversation_and_drops_only_generated_tokens():
    backend = tiny_backend()
    context = "".join(corpus("noise").units(0, 12))
    session = backend.session(make_method("full"))
    messages = [{"role": "user", "content": f"{context}\n\nQuestion: first?"}]
    request = GenerationRequest(messages=messages, max_new_tokens=4, context=context)
    g = session.ask(request, keep="prompt")
    prompt_ids = backend.encode(backend.render(messages))
    assert session.state.cache.layers[0].get_seq_length() == len(prompt_ids) == g.input_tokens
    follow = [*messages, {"role": "assistant", "content": "gold"}, {"role": "user", "content": "second?"}]
    g2 = session.ask(GenerationRequest(messages=follow, max_new_tokens=4, context=context), keep="prompt")
    fresh = backend.generate(GenerationRequest(messages=follow, max_new_tokens=4))
    assert g2.text == fresh.text and g2.input_tokens == fresh.input_tokens


def test_method_specs_and_their_one_line_errors():
    assert [m.label() for m in parse_methods("full")] == ["full"]
    for spec, fragment in [
        ("nosuch:0.5", "unknown method 'nosuch'; known methods: "),
        ("full:0.5", "takes no ratio or budget"),
        ("full,full", "given twice"),
        ("full:zero", "cannot read 'zero'"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            parse_methods(spec)


@pytest.mark.usefixtures("three_questions")
def test_unknown_mode_fails_before_anything_is_written(tmp_path):
    config = RunConfig(model="hf:tiny", tasks=["three_questions"], lengths=[400], mode="batch")
    with pytest.raises(
        UsageError, match="unknown mode 'batch'; choose one of independent, multi-request, multi-turn"
    ):
        run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_bad_method_and_mode_are_one_line_exit_2(tmp_path, tiny_model_dir):
    for args, fragment in [
        (["--methods", "full,nosuch"], "unknown method 'nosuch'"),
        (["--mode", "batch"], "unknown mode 'batch'"),
    ]:
        done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah", "--lengths", "300",
                       "--out", str(tmp_path / "r"), "--no-progress", *args)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert fragment in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


class ServerLikeBackend(CountingBackend):
    """A backend with no in-process model to hook, as an HTTP server or llama.cpp."""

    kind = "openai"
    capabilities = Capabilities(in_process_model=False, tokenization="model")

    def __getattr__(self, name):
        if name == "session":
            raise AttributeError(name)
        return getattr(self.inner, name)

    session = property(lambda self: (_ for _ in ()).throw(AttributeError("session")))


@pytest.mark.usefixtures("three_questions")
def test_an_in_model_method_on_a_server_backend_is_refused_before_anything_runs(tmp_path):
    backend = ServerLikeBackend(tiny_backend())
    backend.kind = "openai"
    config = RunConfig(
        model="hf:tiny", tasks=["three_questions"], lengths=[400], methods=["full", "snapkv:0.5"]
    )
    with pytest.raises(
        UsageError,
        match=r"method snapkv:0.5 changes the model's attention or KV cache and needs an in-process model",
    ):
        run(config, tmp_path / "run", backend=backend, show_progress=False)
    assert not (tmp_path / "run").exists() and backend.generates == 0
    # full runs anywhere, every mode as plain requests
    run(RunConfig(model="hf:tiny", tasks=["three_questions"], lengths=[400], mode="multi-turn"), tmp_path / "ok",
        backend=backend, show_progress=False)  # fmt: skip
    assert backend.generates == 3 and [r[4] for r in table(tmp_path / "ok")] == ["ok"] * 3


def test_a_budget_larger_than_the_context_is_refused_before_anything_runs(tmp_path):
    config = RunConfig(model="hf:tiny", tasks=["niah"], lengths=[400], methods=["snapkv:budget=5000"])
    with pytest.raises(UsageError, match=r"budget 5000 is larger than the context of niah@400"):
        run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    assert not (tmp_path / "run").exists()

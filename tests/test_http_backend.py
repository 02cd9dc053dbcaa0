"""The OpenAI-compatible backend against a real llama.cpp server, directly and through a fault-injecting proxy."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, run_cli, tiny_backend
from fault_proxy import FaultProxy
from test_cli import assert_one_line_error

from longscope.backends import parse_uri, resolve
from longscope.backends.http import OpenAIBackend, parse_target
from longscope.core import Capabilities, Generation, GenerationRequest, UsageError
from longscope.executors.local import LocalExecutor
from longscope.methods.kv.full import Full
from longscope.plan import Prepared, WorkItem
from longscope.runner import RunConfig, run
from longscope.store import DB_NAME, RunStore
from longscope.tasks import cached_sample, make_task

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed (make setup)")

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
# Short waits between attempts keep fault tests quick; the fault run sets a timeout that its stall outlasts.
FAST = {"timeout": "60", "backoff": "0.05", "retries": "5"}


@pytest.fixture(scope="session")
def server(llamacpp_server):
    """The shared llama.cpp server (tests/conftest.py), by the name this module's tests use."""
    return llamacpp_server


@pytest.fixture
def proxy(server):
    fault = FaultProxy(server.url)
    yield fault
    fault.close()


def uri(url: str, model: str, **options: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"openai:{url}/v1#{model}" + (f"?{query}" if query else "")


def result_rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / DB_NAME) as db:
        return db.execute(
            "SELECT sample_id, status, error, prediction FROM results ORDER BY sample_id"
        ).fetchall()


# ---------------------------------------------------------------------------------------------------------
# The URI and bad input


def test_uri_syntax_and_its_mistakes(monkeypatch):
    target = parse_target("http://h:1/v1/#org/model:7b?mode=completion&concurrency=4&timeout=30&stream=false")
    assert (target.base_url, target.model) == ("http://h:1/v1", "org/model:7b")
    assert (target.options.mode, target.options.concurrency, target.options.timeout) == (
        "completion",
        4,
        30.0,
    )
    assert target.options.stream is False and target.options.retries == 5
    parsed = parse_uri("openai:http://h:1/v1#m")
    assert (parsed.scheme, parsed.target, parsed.location, parsed.model) == (
        "openai",
        "http://h:1/v1#m",
        "http://h:1/v1",
        "m",
    )
    monkeypatch.delenv("LONGSCOPE_NO_SUCH_KEY", raising=False)
    for bad, message in (
        ("openai:http://h:1/v1", "no model"),
        ("openai:ftp://h/v1#m", "not an http"),
        ("openai:http://h:1/v1#m?colour=red", "unknown option 'colour'"),
        ("openai:http://h:1/v1#m?mode=batch", "choose one of chat, completion"),
        ("openai:http://h:1/v1#m?concurrency=0", "concurrency='0'"),
        ("openai:http://h:1/v1#m?api_key_env=LONGSCOPE_NO_SUCH_KEY", "LONGSCOPE_NO_SUCH_KEY"),
        ("openapi:http://h:1/v1#m", "gguf:PATH"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_uri(bad)


def test_an_unreachable_server_is_one_line_and_exit_2_before_any_sample(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UsageError, match="cannot reach the server"):
        resolve(uri(url, "m"))
    result = run_cli("run", "--model", uri(url, "m"), "--tasks", "niah", "--lengths", "512",
                     "--out", str(tmp_path / "run"), "--no-progress")  # fmt: skip
    assert_one_line_error(result, "cannot reach the server at")
    assert not (tmp_path / "run" / DB_NAME).exists()


def test_a_model_the_server_does_not_list_is_refused_with_what_it_serves(server):
    with pytest.raises(UsageError, match="does not serve model 'gpt-5'; it serves: .*SmolLM2"):
        resolve(uri(server.url, "gpt-5"))


def test_a_refused_api_key_is_a_usage_error_and_the_key_is_never_stored(proxy, server, monkeypatch, tmp_path):
    monkeypatch.setenv("LONGSCOPE_TEST_KEY", "sk-secret-123")
    proxy.fail_paths = {"/v1/models": 401}
    with pytest.raises(UsageError, match="refused the key in LONGSCOPE_TEST_KEY: 401"):
        resolve(uri(proxy.url, server.model, api_key_env="LONGSCOPE_TEST_KEY"))
    # Accepted, the key goes in the header of each request but into neither the config nor the rows.
    proxy.fail_paths = {}
    model = uri(proxy.url, server.model, api_key_env="LONGSCOPE_TEST_KEY")
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=4)"], lengths=[400], depths=[0.5])
    run(config, tmp_path, show_progress=False)
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    assert b"LONGSCOPE_TEST_KEY" in stored and b"sk-secret-123" not in stored


# ---------------------------------------------------------------------------------------------------------
# Exact lengths and generation


@pytest.fixture(scope="module")
def chat(server):
    return OpenAIBackend.connect(uri(server.url, server.model, **FAST))


def test_the_server_counts_tokens_and_the_gguf_template_renders_what_it_renders(chat, server):
    assert chat.server_kind == "llama-cpp-python" and chat.token_count_source == "server:llama-cpp-python"
    assert chat.template_source.startswith("local:gguf:") and chat.capabilities.tokenization == "server"
    assert chat.context_window == 8192 and not chat.context_window_reported  # the file's; the server says not
    assert (
        chat.model_revision == f"tok-{chat.tokenizer_fingerprint()}"
        and chat.capabilities.max_concurrency == 1
    )
    for length, depth in ((1024, 0.0), (1536, 1.0)):
        sample = make_task("niah").build(chat, length, depth, seed=2)
        prompt = chat.render(sample.messages(), sample.turns[0].answer_prefix)
        assert (
            chat.count_tokens(prompt) + sample.max_new_tokens == length == sample.metadata["realised_tokens"]
        )
        # In the model's own tokenizer (llama.cpp, in this process) the count is the same.
        assert chat._local.count_tokens(prompt) + sample.max_new_tokens == length
    # And the server reads exactly that many tokens: its template is the one rendered here.
    bare = chat.render(sample.messages())
    answer = httpx.post(f"{server.url}/v1/chat/completions", timeout=120,
                        json={"messages": sample.messages(), "max_tokens": 1, "temperature": 0}).json()  # fmt: skip
    assert answer["usage"]["prompt_tokens"] == chat.count_tokens(bare)
    answer = httpx.post(f"{server.url}/v1/completions", timeout=120,
                        json={"prompt": prompt, "max_tokens": 1, "temperature": 0}).json()  # fmt: skip
    assert answer["usage"]["prompt_tokens"] == length - sample.max_new_tokens


def test_chat_and_completion_modes_agree_greedily_and_are_timed(chat, server):
    completion = OpenAIBackend.connect(uri(server.url, server.model, mode="completion", **FAST))
    request = GenerationRequest(messages=QUESTION, max_new_tokens=12)
    answers = [chat.generate(request), completion.generate(request)]
    assert "Paris" in answers[0].text and answers[0].text == answers[1].text
    for answer in answers:
        assert answer.input_tokens == chat.count_tokens(chat.render(QUESTION))
        assert 0 < answer.output_tokens <= 12 and answer.finish_reason == "stop"
        assert answer.prefill_s > 0 and answer.decode_s > 0
        assert answer.wall_s == pytest.approx(answer.prefill_s + answer.decode_s)

    # Without streaming the whole time is the prefill time.
    unstreamed = OpenAIBackend.connect(uri(server.url, server.model, stream="false", **FAST))
    answer = unstreamed.generate(request)
    assert answer.text == answers[0].text and answer.decode_s == 0 and answer.prefill_s == answer.wall_s


def test_answer_prefix_stop_strings_budget_and_seed(chat):
    counting = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    stopped = chat.generate(GenerationRequest(messages=counting, answer_prefix="1, 2,", max_new_tokens=40,
                                              stop=(" 6",)))  # fmt: skip
    assert stopped.text.startswith(" 3, 4") and stopped.text.endswith("5,")
    story = [{"role": "user", "content": "Tell me a story about a fox."}]
    budget = chat.generate(GenerationRequest(messages=story, max_new_tokens=5))
    assert budget.output_tokens == 5 and budget.finish_reason == "length"
    hot = [
        chat.generate(GenerationRequest(messages=story, max_new_tokens=12, temperature=1.0, seed=seed)).text
        for seed in (5, 5, 6)
    ]
    assert hot[0] == hot[1] and hot[0] != hot[2]


def test_without_any_tokenizer_counts_are_approximate_and_flagged(proxy, server):
    proxy.fail_paths = {"/extras/tokenize": 404, "/tokenize": 404}
    proxy.models_patch = {"id": "smollm2"}  # not a path, so no local tokenizer is found either
    backend = OpenAIBackend.connect(uri(proxy.url, "smollm2", **FAST))
    assert backend.token_count_source == "approximate" and backend.template_source == "none"
    assert backend.capabilities.tokenization == "estimate" and not backend.capabilities.exact_tokens
    text = "The river runs wide. " * 10
    assert backend.count_tokens(text) == 53 and backend.decode(backend.encode(text)) == text
    # A local tokenizer is the next best: exact again.
    local = OpenAIBackend.connect(uri(proxy.url, "smollm2", tokenizer="smollm2", **FAST))
    assert local.token_count_source == "local:smollm2" and local.capabilities.tokenization == "local"
    assert local.count_tokens(text) == local._local.count_tokens(text)
    assert local.tokenizer_fingerprint() != backend.tokenizer_fingerprint()


# ---------------------------------------------------------------------------------------------------------
# Faults: every sample ends scored or failed, never dropped


@pytest.mark.slow
def test_a_run_through_faults_scores_every_sample_and_honours_retry_after(proxy, server, tmp_path):
    # The stall outlasts the client's timeout, which must itself outlast a real prefill on a busy machine.
    proxy.schedule = ["500", "pass", "429:1", "drop", "pass", "stall:11", "drop-mid", "503", "pass"]
    model = uri(proxy.url, server.model, **{**FAST, "timeout": "10"})
    backend = OpenAIBackend.connect(model)
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=8)"], lengths=[384], depths=[0.0, 0.5, 1.0],
                       retries=0)  # fmt: skip
    summary = run(config, tmp_path, backend=backend, show_progress=False)
    rows = result_rows(tmp_path)
    assert len(rows) == 3 and all(status == "ok" for _, status, _, _ in rows) and summary.failed == 0
    log = proxy.generation_log()
    assert [entry.action for entry in log] == [
        "500", "pass", "429:1", "drop", "pass", "stall:11", "drop-mid", "503", "pass",
    ]  # fmt: skip
    # The retry after the 429 waited its Retry-After (1 s); the others only the short backoff.
    gaps = [later.at - earlier.at for earlier, later in zip(log, log[1:], strict=False)]
    assert gaps[2] >= 0.95 and gaps[0] < 0.9 and gaps[3] < 0.9
    assert any("429" in line and "in 1.00s" in line for line in backend.retry_log)
    assert any("no answer within the timeout" in line for line in backend.retry_log)
    assert len(backend.retry_log) == 6
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        resent = sum(n for (n,) in db.execute("SELECT retries FROM results"))
    assert resent == 6  # every retry is on the row of the sample it delayed


def test_a_sample_out_of_retries_is_a_failed_row_and_runs_again_on_resume(proxy, server, tmp_path):
    proxy.schedule = ["500", "500", "500"]
    model = uri(proxy.url, server.model, **{**FAST, "retries": "2"})
    backend = OpenAIBackend.connect(model)
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=8)"], lengths=[384], depths=[0.0, 1.0],
                       retries=0)  # fmt: skip
    summary = run(config, tmp_path, backend=backend, show_progress=False)
    rows = result_rows(tmp_path)
    assert [status for _, status, _, _ in rows] == ["failed", "ok"] and summary.failed == 1
    assert "failed after 3 attempts; last error: 500 injected 500" in rows[0][2]
    run(config, tmp_path, backend=backend, show_progress=False)
    assert [status for _, status, _, _ in result_rows(tmp_path)] == ["ok", "ok"]
    assert len(proxy.generation_log()) == 3 + 1 + 1


def test_a_window_the_server_reports_stops_the_run_before_any_sample(proxy, server, tmp_path):
    proxy.models_patch = {"max_model_len": 1024}
    model = uri(proxy.url, server.model, **FAST)
    backend = OpenAIBackend.connect(model)
    assert backend.context_window == 1024 and backend.context_window_reported
    config = RunConfig(model=model, tasks=["niah"], lengths=[512, 2048])
    with pytest.raises(UsageError, match="above the context window"):
        run(config, tmp_path, backend=backend, show_progress=False)
    assert not (tmp_path / DB_NAME).exists() and proxy.generation_log() == []


def test_a_window_the_server_does_not_report_fails_the_row_with_the_reason(server, tmp_path):
    model = uri(server.url, server.model, **FAST)
    backend = OpenAIBackend.connect(model)
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=8)"], lengths=[4500], depths=[0.5],
                       retries=0)  # fmt: skip
    summary = run(config, tmp_path, backend=backend, show_progress=False)
    [(_, status, error, _)] = result_rows(tmp_path)
    assert status == "failed" and "maximum context length is 4096 tokens" in error and summary.failed == 1
    # The window is learnt from the answer: the next over-long request is refused without a round trip.
    assert backend.context_window == 4096
    with pytest.raises(ValueError, match="exceeds the server's context window of 4096"):
        backend.generate(GenerationRequest(messages=[{"role": "user", "content": "word " * 5000}]))


# ---------------------------------------------------------------------------------------------------------
# The concurrent executor


def _work(backend, specs, lengths, depths):
    items = [
        WorkItem(task=make_task(spec), length=length, depth=depth, seed=0, method=Full())
        for spec in specs
        for length in lengths
        for depth in depths
    ]
    return [
        Prepared(item, cached_sample(item.task, backend, item.length, item.depth, item.seed))
        for item in items
    ]


def _execute(work, backend, store, retries):
    def write(item, rows):
        for row in rows:
            store.write(row, item.sample)

    LocalExecutor().run(work, backend, retries=retries, attempts={}, on_done=write)


class SlowBackend:
    """Wraps a backend: each request takes a while, some fail; records how many run at once."""

    capabilities = Capabilities(max_concurrency=3)

    def __init__(self, inner, failing=()):
        self.inner = inner
        self.failing = set(failing)
        self.running = self.peak = 0
        self.lock = threading.Lock()
        for name in ("kind", "model_name", "model_revision", "context_window"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.2)
            if request.messages[-1]["content"] in self.failing:
                raise RuntimeError("simulated server error")
            return Generation("x", 1, 1, 0.1, 0.1, 0.2)
        finally:
            with self.lock:
                self.running -= 1


def test_the_concurrent_executor_keeps_its_workers_busy_and_writes_every_row(tmp_path):
    backend = SlowBackend(tiny_backend())
    work = _work(backend, ["niah", "niah_multikey"], [512, 640], [0.0, 0.5, 1.0])
    # The shorter samples fail every time they are tried.
    backend.failing = {w.sample.messages()[-1]["content"] for w in work if w.item.length == 512}
    store = RunStore.open(tmp_path, create=True)
    try:
        _execute(work, backend, store, retries=1)
        rows = {row.key: row for row in store.results()}
    finally:
        store.close()
    assert backend.peak == 3 and set(rows) == {w.item.key() for w in work}
    for row in rows.values():
        if row.length == 512:
            assert (row.status, row.attempts, row.error) == (
                "failed",
                2,
                "RuntimeError: simulated server error",
            )
        else:
            assert (row.status, row.prediction) == ("ok", "x")


def test_concurrent_requests_to_the_server_all_finish(server, tmp_path):
    backend = OpenAIBackend.connect(uri(server.url, server.model, concurrency="2", **FAST))
    assert backend.capabilities.max_concurrency == 2
    work = _work(backend, ["niah(max_new_tokens=8)"], [400], [0.0, 0.5, 1.0])
    store = RunStore.open(tmp_path, create=True)
    try:
        _execute(work, backend, store, retries=0)
        rows = store.results()
    finally:
        store.close()
    assert len(rows) == 3 and all(row.status == "ok" and row.prefill_s > 0 for row in rows)

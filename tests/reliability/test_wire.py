"""Faults on the wire: retries for every kind of fault a server or network makes, bounded answers and waits, and
a 100-sample run through 20 % faults that completes."""

from __future__ import annotations

import random
import sqlite3

import pytest
from fault_proxy import FaultProxy

from longscope.backends.http import OpenAIBackend, parse_target
from longscope.backends.http_options import Options
from longscope.backends.http_stream import CAPPED, kept_chars
from longscope.backends.http_transport import generation_timeout
from longscope.config import RunConfig
from longscope.core import GenerationRequest
from longscope.runner import run
from longscope.store import DB_NAME

from .fake_openai import FakeOpenAI
from .figures import record

FAST = "context_window=4096&backoff=0.01&retries=8&timeout=2"


@pytest.fixture
def fake():
    server = FakeOpenAI()
    yield server
    server.close()


def _request(max_new_tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": "Say the number."}], max_new_tokens=max_new_tokens
    )


@pytest.mark.parametrize("stream", ["true", "false"])
def test_invalid_json_and_an_empty_200_are_retried_like_a_5xx(fake, stream):
    proxy = FaultProxy(fake.url, schedule=["invalid-json", "empty-200", "500"])
    try:
        backend = OpenAIBackend(parse_target(f"{proxy.url}/v1#fake?{FAST}&stream={stream}"))
        answer = backend.generate(_request())
    finally:
        proxy.close()
    assert answer.text == fake.answer and answer.retries == 3
    reasons = " ".join(backend.retry_log)
    assert "invalid JSON" in reasons and "empty body" in reasons and "500" in reasons


@pytest.mark.parametrize("stream, size", [("true", 3_000_000), ("false", 20_000)])
def test_a_huge_answer_is_cut_to_its_bound_and_the_row_says_so(stream, size):
    server = FakeOpenAI(answer="x" * size)
    try:
        backend = OpenAIBackend(parse_target(f"{server.url}/v1#fake?{FAST}&stream={stream}"))
        answer = backend.generate(_request(max_new_tokens=8))
    finally:
        server.close()
    assert len(answer.text) == kept_chars(8) == 256
    assert answer.finish_reason == CAPPED


def test_a_non_streamed_body_far_past_the_bound_is_not_read():
    server = FakeOpenAI(answer="x" * 2_000_000)
    try:
        backend = OpenAIBackend(parse_target(f"{server.url}/v1#fake?{FAST}&stream=false"))
        with pytest.raises(RuntimeError, match="far more than was asked for"):
            backend.generate(_request(max_new_tokens=8))
    finally:
        server.close()


def test_the_default_timeout_follows_the_request_size():
    streamed, whole = Options(), Options(stream=False)
    assert generation_timeout(streamed, 1_000, 64) == 30 + 10  # 1,000 prompt tokens at 100 tokens/s
    assert generation_timeout(whole, 1_000, 100) == 30 + 10 + 20  # and 100 output tokens at 5 tokens/s
    assert generation_timeout(streamed, 1_000_000, 64) == 600  # capped
    assert generation_timeout(Options(timeout=7.0), 1_000_000, 64) == 7.0  # a given timeout is kept


FAULTS = ["500", "429:0.05", "stall:3", "drop", "drop-mid", "invalid-json", "empty-200"]


@pytest.mark.slow  # about 30 s on two shared cores
def test_a_100_sample_run_through_20_percent_faults_completes(tmp_path, fake):
    rng = random.Random(25)
    schedule = [rng.choice(FAULTS) if rng.random() < 0.2 else "pass" for _ in range(400)]
    proxy = FaultProxy(fake.url, schedule=list(schedule))
    try:
        config = RunConfig(
            model=f"openai:{proxy.url}/v1#fake?{FAST}&concurrency=4",
            tasks=["niah(max_new_tokens=8)"],
            lengths=[256],
            samples=100,
            retries=1,
        )
        run(config, tmp_path, show_progress=False, plane_retrievers=())
        log = proxy.generation_log()
    finally:
        proxy.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        rows = db.execute("SELECT status, retries FROM results").fetchall()
    completed = sum(status == "ok" for status, _ in rows)
    retried = sum((retries or 0) > 0 for _, retries in rows)
    injected = [entry.action for entry in log if entry.action != "pass"]
    record(
        "faults_on_the_wire",
        {
            "samples": 100,
            "fault_rate": 0.2,
            "requests": len(log),
            "faults_injected": len(injected),
            "faults_by_kind": {kind.split(":")[0]: sum(a == kind for a in injected) for kind in FAULTS},
            "completed": completed,
            "rows_that_needed_retries": retried,
            "failed": len(rows) - completed,
        },
    )
    assert len(rows) == 100 and completed == 100
    assert retried >= len(injected) // 2 > 0  # the faults happened, and were absorbed by retries

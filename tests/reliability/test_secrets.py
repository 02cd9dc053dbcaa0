"""An API key, given in its environment variable or by mistake inside the URL, is found nowhere afterwards: not
in the store, the report, the exports, the cache, the output, or the error messages."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import pytest
from conftest import run_cli

from longscope.backends.http_options import Options
from longscope.backends.http_transport import make_client
from longscope.redact import install, redact, redact_value

from .fake_openai import FakeOpenAI
from .test_bad_input import invoke

ENV_KEY = "sk-env-SECRET-0123456789"
URL_KEY = "url-SECRET-9876543210"
QUERY_KEY = "query-SECRET-5555555555"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://user:KEY123456@host/v1", "http://user:***@host/v1"),
        ("openai:https://me:p%40ss@h:8080/v1#m?mode=chat", "openai:https://me:***@h:8080/v1#m?mode=chat"),
        ("https://h/v1?api_key=abc123&mode=chat", "https://h/v1?api_key=***&mode=chat"),
        ("https://h/v1#m?mode=chat&access_token=zz9", "https://h/v1#m?mode=chat&access_token=***"),
        ("https://h/v1#m?api_key_env=MY_KEY", "https://h/v1#m?api_key_env=MY_KEY"),  # a name, not a key
        ("no credentials at http://host:8080/v1", "no credentials at http://host:8080/v1"),
    ],
)
def test_redact_masks_credentials_in_urls_and_keeps_the_rest(text, expected):
    assert redact(text) == expected


def test_redact_value_reaches_every_string_in_a_config():
    config = {"model": "openai:http://u:KEY123456@h/v1#m", "tasks": ["niah"], "samples": 2}
    assert redact_value(config) == {"model": "openai:http://u:***@h/v1#m", "tasks": ["niah"], "samples": 2}


def test_the_key_from_the_environment_is_masked_wherever_it_is_echoed(monkeypatch):
    monkeypatch.setenv("LS_TEST_KEY", ENV_KEY)
    make_client(Options(api_key_env="LS_TEST_KEY")).close()
    assert redact(f"401: invalid key {ENV_KEY} for this project") == "401: invalid key *** for this project"


@pytest.fixture
def redaction_installed():
    """``redact.install()`` for one test, with logging's record factory put back afterwards."""
    factory = logging.getLogRecordFactory()
    try:
        yield install
    finally:
        logging.setLogRecordFactory(factory)


def test_log_records_of_any_logger_carry_no_key(redaction_installed):
    redaction_installed()
    redaction_installed()  # twice is once: a second install wraps nothing again
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    # A library's own logger that does not propagate: a filter on the root logger would never see it.
    logger = logging.getLogger("some.http.library")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("POST %s -> %d", f"http://me:{URL_KEY}@127.0.0.1:9/v1/chat/completions", 401)
        try:
            raise ConnectionError(f"refused: https://h/v1?api_key={QUERY_KEY}")
        except ConnectionError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert "INFO POST http://me:***@127.0.0.1:9/v1/chat/completions -> 401" in text
    assert "ConnectionError: refused: https://h/v1?api_key=***" in text  # the traceback's text as well
    assert URL_KEY not in text and QUERY_KEY not in text


def test_warnings_carry_no_key(redaction_installed):
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        redaction_installed()
        warnings.warn(f"retrying http://me:{URL_KEY}@host/v1 after a 429", RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["retrying http://me:***@host/v1 after a 429"]
    assert shown[0].category is RuntimeWarning


@pytest.mark.slow  # four runs of the real command, about 30 s
def test_no_key_is_written_or_printed_anywhere(tmp_path, monkeypatch, capsys):
    server = FakeOpenAI(echo_every=2)  # every second request is refused with the credentials echoed back
    try:
        host = server.url.removeprefix("http://")
        model = f"openai:http://user:{URL_KEY}@{host}/v1#fake?context_window=2048&api_key_env=LS_TEST_KEY"
        model += "&retries=0&backoff=0"
        out_dir, cache = tmp_path / "run", tmp_path / "cache"
        env = {"LS_TEST_KEY": ENV_KEY, "LONGSCOPE_CACHE": str(cache)}
        argv = ["--tasks", "niah(max_new_tokens=8)", "--lengths", "512", "--samples", "4", "--retries", "0"]
        argv += ["--measure-plane", "none"]  # the run writes its report and exports too
        done = run_cli("run", "--model", model, *argv, "--out", str(out_dir), "--no-progress", env=env)
        # Refusals whose messages quote the server address (a model it does not serve, a URL it cannot use) and
        # `show`, in this process for speed.
        monkeypatch.setenv("LS_TEST_KEY", ENV_KEY)
        monkeypatch.setenv("LONGSCOPE_CACHE", str(cache))
        missing = model.replace("#fake", "#missing")
        wrong_scheme = f"openai:ftp://{host}/v1?api_key={QUERY_KEY}#fake"
        elsewhere = str(tmp_path / "x")
        commands = [
            ["run", "--model", missing, "--out", elsewhere],
            ["run", "--model", wrong_scheme, "--out", elsewhere],
            ["show", str(out_dir)],
            ["report", str(out_dir)],
        ]
        printed = [(code, out + err) for code, out, err in (invoke(monkeypatch, capsys, c) for c in commands)]
    finally:
        server.close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert [code for code, _ in printed] == [2, 2, 0, 0] and "missing" in printed[0][1]
    assert "user:***@" in printed[0][1] and "api_key=***" in printed[1][1]
    # The URL's credentials were really sent (as HTTP basic auth, which wins over the bearer key), and echoed.
    sent = [headers.get("Authorization", "") for _, headers in server.requests]
    assert any(value.startswith("Basic ") for value in sent)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {
        "run.db",
        "report.html",
        "results.csv",
        "summary.json",
        "config.json",
    }
    for secret in (ENV_KEY, URL_KEY, QUERY_KEY):
        for path in written:
            assert secret.encode() not in Path(path).read_bytes(), (secret, path)
        for text in (done.stdout + done.stderr, *(text for _, text in printed)):
            assert secret not in text, secret

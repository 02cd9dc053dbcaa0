"""HTTP with retries for the OpenAI-compatible backend: backoff with jitter, Retry-After, status checks, and
transport errors told in words."""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from longscope import redact
from longscope.backends.http_options import Options

MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 300.0
CONNECT_TIMEOUT_S = 10.0
# Without a ``timeout`` option the silence allowed follows the request's size: a floor, plus the prompt read at
# a slow server's pace (100 tokens/s), plus, without streaming, the answer written at 5 tokens/s; capped at
# MAX_TIMEOUT_S. Calls that generate nothing (the model list, tokenize) wait at most CALL_TIMEOUT_S.
BASE_TIMEOUT_S = 30.0
PREFILL_TOKENS_PER_S = 100.0
DECODE_TOKENS_PER_S = 5.0
MAX_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 120.0

T = TypeVar("T")


class ServerError(RuntimeError):
    """A request that failed after its retries, or that the server refused; the message is the reason."""


class Retryable(Exception):
    """A failure worth sending the request again for; ``wait`` is the server's Retry-After, if it gave one."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def make_client(options: Options) -> httpx.Client:
    """A client for up to ``options.concurrency`` requests at once, with the API key as a bearer token."""
    headers = {}
    if options.api_key_env:
        # Read once, at start; only the variable's name is in the URI and so in the stored config, and the key
        # itself is masked wherever a server echoes it back (an error message, a row).
        key = os.environ[options.api_key_env]
        redact.register(key)
        headers["Authorization"] = f"Bearer {key}"
    timeout = httpx.Timeout(options.timeout or CALL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=None)
    limits = httpx.Limits(max_connections=max(4, 2 * options.concurrency), max_keepalive_connections=None)
    return httpx.Client(headers=headers, timeout=timeout, limits=limits)


class Transport:
    """Sends requests through one client and retries what is worth retrying. Thread-safe; the retries taken
    are counted per thread, so each concurrent request knows how many it needed.

    ``on_refusal`` hears the text of every error the server gives as its answer (not retried), so that a
    window the server states in an error can be learnt from it.
    """

    def __init__(
        self, client: httpx.Client, options: Options, on_refusal: Callable[[str], None] = lambda text: None
    ) -> None:
        self.client = client
        self.options = options
        self.on_refusal = on_refusal
        self.retry_log: list[str] = []  # one line per retry taken, for tests and the curious
        self._lock = threading.Lock()
        self._thread = threading.local()

    # -- the retries of the request this thread is sending ---------------------------------------------

    def start_count(self) -> None:
        self._thread.retries = 0

    @property
    def retries(self) -> int:
        return getattr(self._thread, "retries", 0)

    # -- sending ------------------------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        # Jitter spreads the retries of concurrent requests so they do not hit the server together again.
        return min(MAX_BACKOFF_S, self.options.backoff * 2**attempt) * (0.5 + random.random() / 2)

    def with_retries(self, what: str, attempt_once: Callable[[], T]) -> T:
        last = ""
        for attempt in range(self.options.retries + 1):
            try:
                return attempt_once()
            except Retryable as exc:
                last, wait = exc.reason, exc.wait
            except httpx.TransportError as exc:
                last, wait = transport_reason(exc), None
            if attempt == self.options.retries:
                break
            wait = self.backoff(attempt) if wait is None else wait
            self._thread.retries = self.retries + 1
            with self._lock:
                self.retry_log.append(f"{what}: {last}; retry {attempt + 1} in {wait:.2f}s")
            time.sleep(wait)
        raise ServerError(f"{what} failed after {self.options.retries + 1} attempts; last error: {last}")

    def check_status(self, response: httpx.Response, what: str) -> None:
        """Retry on 408, 429 and 5xx; any other error status is the server's answer to this request."""
        status = response.status_code
        if status < 400:
            return
        if status in (408, 429) or status >= 500:
            raise Retryable(f"{status} {error_text(response)}", retry_after(response))
        text = error_text(response)
        self.on_refusal(text)
        if status in (401, 403):
            raise ServerError(f"{what}: the server refused the API key ({status}): {text}")
        raise ServerError(f"{what}: the server answered {status}: {text}")

    def post(self, url: str, body: dict[str, Any], what: str = "") -> dict[str, Any]:
        def once() -> dict[str, Any]:
            response = self.client.post(url, json=body)
            self.check_status(response, what or url)
            return answer_json(response.status_code, response.content)

        return self.with_retries(what or f"POST {url}", once)


def generation_timeout(options: Options, prompt_tokens: int, max_new_tokens: int) -> float:
    """The longest silence allowed for one generation request: the ``timeout`` option when given, else one
    that follows the request's size (see BASE_TIMEOUT_S)."""
    if options.timeout is not None:
        return options.timeout
    seconds = BASE_TIMEOUT_S + prompt_tokens / PREFILL_TOKENS_PER_S
    if not options.stream:
        seconds += max_new_tokens / DECODE_TOKENS_PER_S
    return min(MAX_TIMEOUT_S, seconds)


def answer_json(status: int, content: bytes) -> dict[str, Any]:
    """The JSON object of a successful answer; an empty or malformed one is a fault of the wire or the server,
    worth sending the request again for, like a 5xx."""
    if not content.strip():
        raise Retryable(f"the server answered {status} with an empty body")
    try:
        body = json.loads(content)
    except ValueError:
        shown = content[:80].decode("utf-8", "replace")
        raise Retryable(f"the server answered {status} with invalid JSON: {shown!r}") from None
    if not isinstance(body, dict):
        raise Retryable(f"the server answered {status} with JSON that is not an object")
    return body


def retry_after(response: httpx.Response) -> float | None:
    """A 429's or 503's Retry-After in seconds (given as seconds or as an HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def error_text(response: httpx.Response) -> str:
    """The reason an error response gives, from the JSON error shapes servers use, else its text."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text.strip()[:500] or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or json.dumps(error))[:500]
    return str(error or body.get("detail") or body)[:500] if isinstance(body, dict) else str(body)[:500]


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def transport_reason(exc: httpx.TransportError) -> str:
    """A transport error in words a user can act on."""
    name = {
        httpx.ConnectError: "connection refused or unreachable",
        httpx.ConnectTimeout: "timed out connecting",
        httpx.ReadTimeout: "no answer within the timeout",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.RemoteProtocolError: "the server closed the connection",
        httpx.ReadError: "the connection broke while reading",
    }.get(type(exc), type(exc).__name__)
    detail = str(exc).strip()
    return f"{name} ({detail})" if detail and detail not in name else name

"""The OpenAI-compatible HTTP backend (``openai:BASE_URL#MODEL?options``): vLLM, SGLang, llama.cpp, hosted APIs.

URI syntax::

    openai:BASE_URL#MODEL[?option=value&option=value...]
    openai:http://127.0.0.1:8080/v1#smollm2?mode=completion&concurrency=4&api_key_env=MY_KEY

``BASE_URL`` is the API root that ``/models``, ``/chat/completions`` and ``/completions`` hang from (usually
ending in ``/v1``); ``MODEL`` is the model id exactly as the server's ``/v1/models`` lists it. Options:

==================  ===========  ===================================================================================
option              default      meaning
==================  ===========  ===================================================================================
mode                chat         ``chat``: /chat/completions with messages, the server applies its chat template;
                                 ``completion``: /completions with the prompt rendered here (``tokenizer``'s
                                 chat template, or plain paragraphs without one)
concurrency         1            requests in flight at once (``max_concurrency``, read by the concurrent executor);
                                 above 1, time to first token includes any queueing in the server
timeout             600          the longest silence allowed, in seconds: before the first token (long prompts
                                 prefill for minutes), between streamed chunks, and, without streaming, for the
                                 whole answer; a stall past it is retried
retries             5            retries of one request after a connection error, a timeout, a dropped stream,
                                 429 or 5xx; waits double from ``backoff`` (up to 60 s), and a 429's or 503's
                                 Retry-After (seconds or an HTTP date, up to 300 s) is waited instead
backoff             1.0          seconds before the first retry
api_key_env         (none)       environment variable holding the API key, read at start and sent as a bearer
                                 token; the key is never written to the run config or the rows
tokenizer           (none)       a local tokenizer and chat template: ``gguf:PATH``, ``hf:PATH_OR_ID`` or
                                 ``smollm2`` (the bundled GGUF). Used to render prompts, and to count tokens when
                                 the server has no tokenize endpoint
stream              true         stream the answer (server-sent events) to time the first token; with ``false``,
                                 or a server that does not stream, ``prefill_s`` holds the whole time and
                                 ``decode_s`` is 0
context_window      (reported)   the server's context window in tokens, for servers that do not report it
prefill             auto         how an answer prefix is sent in chat mode: ``continue`` (a trailing assistant
                                 message the server continues: vLLM and SGLang with continue_final_message,
                                 llama.cpp's C++ server by itself), ``completion`` (the rendered prompt with the
                                 prefix, through /completions); ``auto`` picks by the server's kind
==================  ===========  ===================================================================================

Token counts, which exact lengths rest on, come from the first of: the server's tokenize endpoint
(llama-cpp-python: POST /extras/tokenize; llama.cpp: POST /tokenize; vLLM: POST /tokenize), the local
``tokenizer``, or an approximation of one token per four characters. ``token_count_source`` says which
(``server:...``, ``local:...``, ``approximate``); whenever counts are not exact, ``token_count_exact`` is False
and ``approximate_tokens`` is True, for the runner to record with each sample.

In chat mode the server applies its own template, so the text counted for a sample's length is the prompt as
the server renders it: from llama.cpp's /apply-template where the server has it, else rendered here with the
local ``tokenizer``'s template (llama-cpp-python and vLLM apply the template stored with the model, which is
the one a ``gguf:`` or ``hf:`` tokenizer of the same model holds), and counted with the server's tokenizer. With
neither, the messages are counted as plain paragraphs without the template's tokens, and the counts are
flagged as approximate like the fallback above. A model id that is a path to a GGUF file on this machine
(llama-cpp-python's default id) is taken as ``tokenizer=gguf:`` that path. In completion mode, a server that
puts a BOS token in front of every prompt by itself gets the prompt without the BOS the template wrote, and the
count includes it once; where the BOS text is unknown (no local tokenizer) the counts are flagged inexact.

Timings: with streaming, ``prefill_s`` is the time to the first generated token and ``decode_s`` the rest.
Servers that reuse the cache of a previous prompt's prefix (llama-cpp-python always, vLLM with prefix caching)
report a shorter prefill for samples that share a beginning; llama.cpp's server is asked not to
(``cache_prompt: false``).

Bad input that can be known at start (an unreachable server, a model the server does not list, a refused API
key, a missing key variable, an unknown option, a window the server reports smaller than a requested length)
raises UsageError before any sample runs; what only shows in an answer (a prompt over a window the server did
not report, an error after all retries) is raised from ``generate`` and becomes a failed row with the reason.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from longscope.backends.reasoning import strip_reasoning
from longscope.core import Generation, GenerationRequest, UsageError

_MAX_BACKOFF_S = 60.0
_MAX_RETRY_AFTER_S = 300.0
_CONNECT_TIMEOUT_S = 10.0
_OPENAI_MAX_STOPS = 4
# Error texts that state a context window: llama-cpp-python, vLLM and OpenAI ("maximum context length is N"),
# llama-cpp-python's raw error ("context window of N"), llama.cpp ("n_ctx": N in its error body).
_WINDOW_IN_ERROR = re.compile(
    r"maximum context length is (\d+)|context window of (\d+)|\"n_ctx\"\s*:\s*(\d+)", re.IGNORECASE
)
_GENERIC_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>",
    "<start_of_turn>", "<end_of_turn>", "[INST]", "[/INST]",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# The URI


@dataclass(frozen=True)
class Options:
    mode: str = "chat"
    concurrency: int = 1
    timeout: float = 600.0
    retries: int = 5
    backoff: float = 1.0
    api_key_env: str | None = None
    tokenizer: str | None = None
    stream: bool = True
    context_window: int | None = None
    prefill: str = "auto"


@dataclass(frozen=True)
class Target:
    base_url: str
    model: str
    options: Options = field(default_factory=Options)


_CHOICES = {"mode": ("chat", "completion"), "prefill": ("auto", "continue", "completion")}


def parse_target(target: str) -> Target:
    """Read ``BASE_URL#MODEL?options`` (what follows ``openai:``); every mistake is a UsageError naming it."""
    syntax = "write openai:BASE_URL#MODEL, e.g. openai:http://127.0.0.1:8080/v1#my-model?mode=chat"
    base, hash_sign, rest = target.partition("#")
    base = base.strip().rstrip("/")
    model, _, query = rest.partition("?")
    model = model.strip()
    if not hash_sign or not model:
        raise UsageError(f"no model in {('openai:' + target)!r}; {syntax}")
    if not re.match(r"^https?://[^/\s]+", base):
        raise UsageError(f"the server address {base!r} is not an http:// or https:// URL; {syntax}")
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Options)}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        if key not in known:
            raise UsageError(f"unknown option {key!r} in the model URI; known options: {', '.join(known)}")
        values[key] = _option_value(key, raw)
    options = Options(**values)
    if options.api_key_env is not None and not os.environ.get(options.api_key_env):
        raise UsageError(
            f"the environment variable {options.api_key_env} (api_key_env) is not set; export the API key in it"
        )
    return Target(base_url=base, model=model, options=options)


def _option_value(key: str, raw: str) -> Any:
    try:
        if key in ("concurrency", "retries", "context_window"):
            value: Any = int(raw)
            if value < (0 if key == "retries" else 1):
                raise ValueError
        elif key in ("timeout", "backoff"):
            value = float(raw)
            if not value > 0 and not (key == "backoff" and value == 0):
                raise ValueError
        elif key == "stream":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value = raw.lower() in ("true", "1", "yes")
        else:
            value = raw
            if key in _CHOICES and raw not in _CHOICES[key]:
                raise UsageError(f"option {key}={raw!r}: choose one of {', '.join(_CHOICES[key])}")
            if not raw:
                raise ValueError
    except ValueError:
        raise UsageError(f"option {key}={raw!r} in the model URI is not a valid value") from None
    return value


# ---------------------------------------------------------------------------------------------------------
# Errors


class ServerError(RuntimeError):
    """A request that failed after its retries, or that the server refused; the message is the reason."""


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _EmptyStream(Exception):
    """The server opened an event stream and closed it without a chunk: llama-cpp-python does this when the
    prompt is refused (too long), since its check runs after the 200 has gone out."""


def _retry_after(response: httpx.Response) -> float | None:
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
    return min(_MAX_RETRY_AFTER_S, max(0.0, seconds))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text.strip()[:500] or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or json.dumps(error))[:500]
    return str(error or body.get("detail") or body)[:500] if isinstance(body, dict) else str(body)[:500]


# ---------------------------------------------------------------------------------------------------------
# Approximate tokens


class _ApproximateTokens:
    """One token per four characters: the last resort, flagged wherever it is used. ``encode`` hands out ids
    for four-character pieces so that ``decode`` gives the text back, as the haystack fitting needs."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []
        self._lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        ids = []
        with self._lock:
            for i in range(0, len(text), 4):
                piece = text[i : i + 4]
                if piece not in self._ids:
                    self._ids[piece] = len(self._pieces)
                    self._pieces.append(piece)
                ids.append(self._ids[piece])
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self._pieces[i] for i in ids)

    @staticmethod
    def count(text: str) -> int:
        return math.ceil(len(text) / 4)


# ---------------------------------------------------------------------------------------------------------
# The backend


@dataclass(frozen=True)
class _TokenizeEndpoint:
    name: str
    tokenize_path: str
    detokenize_path: str
    text_key: str


def _tokenize_bodies(model: str) -> list[tuple[_TokenizeEndpoint, Any, Any]]:
    """The tokenize endpoints servers have, in the order probed, with their request bodies for text and ids."""
    return [
        (
            _TokenizeEndpoint("llama-cpp-python", "/extras/tokenize", "/extras/detokenize", "text"),
            lambda text: {"input": text, "model": model},
            lambda ids: {"tokens": ids, "model": model},
        ),
        (
            _TokenizeEndpoint("llama.cpp", "/tokenize", "/detokenize", "content"),
            lambda text: {"content": text, "add_special": False, "parse_special": True},
            lambda ids: {"tokens": ids},
        ),
        (
            _TokenizeEndpoint("vllm", "/tokenize", "/detokenize", "prompt"),
            lambda text: {"model": model, "prompt": text, "add_special_tokens": False},
            lambda ids: {"model": model, "tokens": ids},
        ),
    ]


class OpenAIBackend:
    """A model behind an OpenAI-compatible server. Thread-safe: up to ``max_concurrency`` requests at once."""

    kind = "openai"

    def __init__(self, target: Target, *, client: httpx.Client | None = None) -> None:
        self.target = target
        self.options = target.options
        self.base_url = target.base_url
        self.root_url = re.sub(r"/v\d+$", "", self.base_url)
        self.model_name = target.model
        self.max_concurrency = self.options.concurrency
        self._api_key_env = self.options.api_key_env
        headers = {}
        if self._api_key_env:
            # Read once, at start; only the variable's name is in the URI and so in the stored config.
            headers["Authorization"] = f"Bearer {os.environ[self._api_key_env]}"
        timeout = httpx.Timeout(self.options.timeout, connect=_CONNECT_TIMEOUT_S, pool=None)
        limits = httpx.Limits(
            max_connections=max(4, 2 * self.max_concurrency), max_keepalive_connections=None
        )
        self.client = client or httpx.Client(headers=headers, timeout=timeout, limits=limits)
        self._lock = threading.Lock()
        self.retry_log: list[str] = []  # one line per retry taken, for tests and the curious
        self._request_state = threading.local()  # retries of the request this worker thread is sending

        self.server_kind, model_entry = self._check_server()
        self._local = self._local_tokenizer(self.options.tokenizer)
        self._tokenize, self._auto_prefix = self._find_tokenize_endpoint()
        self._apply_template = self._has_apply_template()
        self._approx = _ApproximateTokens()
        self.context_window, self.context_window_reported = self._window(model_entry)

        if self._tokenize is not None:
            self.token_count_source = f"server:{self._tokenize[0].name}"
        elif self._local is not None:
            self.token_count_source = f"local:{self._local_uri}"
        else:
            self.token_count_source = "approximate"
        self.template_source = self._template_source()
        # The BOS a server adds to a /completions prompt by itself: counted as text (so counts are exact) and
        # cut from the prompt before sending (so the model does not read it twice).
        self._bos_text: str = getattr(self._local, "bos_token", None) or ""
        if not self._bos_text and self._local is not None and hasattr(self._local, "tokenizer"):
            self._bos_text = self._local.tokenizer.bos_token or ""
        unknown_bos = self.options.mode == "completion" and bool(self._auto_prefix) and not self._bos_text
        self.token_count_exact = (
            self.token_count_source != "approximate" and self.template_source != "none" and not unknown_bos
        )
        self.approximate_tokens = not self.token_count_exact
        self.prefill_mode = self._prefill_mode()
        self._fingerprint: str | None = None
        self.model_revision = f"tok-{self.tokenizer_fingerprint()}"

    @classmethod
    def connect(cls, target: str | Target) -> OpenAIBackend:
        """Connect and check, from a Target, ``BASE_URL#MODEL?...`` or the whole ``openai:`` URI."""
        if isinstance(target, str):
            target = parse_target(target.removeprefix("openai:"))
        return cls(target)

    def close(self) -> None:
        self.client.close()

    # -- start-up checks -----------------------------------------------------------------------------

    def _check_server(self) -> tuple[str, dict[str, Any]]:
        """List the server's models: the one check that reaches it, the key and the model name at once."""
        url = f"{self.base_url}/models"
        try:
            response = self.client.get(url, timeout=httpx.Timeout(30.0, connect=_CONNECT_TIMEOUT_S))
        except httpx.TransportError as exc:
            raise UsageError(
                f"cannot reach the server at {self.base_url}: {_transport_reason(exc)}"
            ) from None
        if response.status_code in (401, 403):
            key = (
                f"the key in {self._api_key_env}"
                if self._api_key_env
                else "no API key (set api_key_env=VARIABLE in the model URI)"
            )
            raise UsageError(
                f"the server at {self.base_url} refused {key}: {response.status_code} {_error_text(response)}"
            )
        if response.status_code >= 400:
            raise UsageError(
                f"the server at {self.base_url} answered {response.status_code} to GET /models "
                f"({_error_text(response)}); is this the base URL of an OpenAI-compatible API (often ending in /v1)?"
            )
        try:
            entries = [entry for entry in response.json()["data"] if isinstance(entry, dict)]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{url} did not answer with an OpenAI model list; check the base URL") from None
        by_id = {str(entry.get("id")): entry for entry in entries}
        if self.model_name not in by_id:
            served = ", ".join(sorted(by_id)) or "none"
            raise UsageError(
                f"the server at {self.base_url} does not serve model {self.model_name!r}; it serves: {served}"
            )
        entry = by_id[self.model_name]
        owner = str(entry.get("owned_by", ""))
        kind = {"me": "llama-cpp-python", "llamacpp": "llama.cpp", "vllm": "vllm", "sglang": "sglang"}.get(
            owner, "openai"
        )
        return kind, entry

    def _local_tokenizer(self, uri: str | None) -> Any | None:
        if uri is None:
            # llama-cpp-python names a model by its path unless given an alias: use that file's tokenizer.
            candidate = Path(self.model_name)
            if self.model_name.endswith(".gguf") and candidate.is_file():
                uri = f"gguf:{candidate}"
            else:
                self._local_uri = None
                return None
        self._local_uri = uri
        scheme, _, rest = uri.partition(":")
        if uri == "smollm2" or scheme == "gguf":
            from longscope.backends.llamacpp import GGUFTokenizer

            if uri == "smollm2":
                from longscope.backends.smollm2 import gguf_path

                rest = str(gguf_path())
            return GGUFTokenizer(rest)
        if scheme == "hf" and rest:
            from transformers import AutoTokenizer

            from longscope.backends.hf import HFTokenizer, quiet_transformers

            quiet_transformers()
            try:
                tokenizer = AutoTokenizer.from_pretrained(rest)
            except (OSError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"cannot load tokenizer {rest!r}: {first}") from None
            return HFTokenizer(tokenizer, name=rest)
        raise UsageError(f"tokenizer={uri!r}: give gguf:PATH, hf:PATH_OR_ID or smollm2")

    def _find_tokenize_endpoint(self) -> tuple[tuple[_TokenizeEndpoint, Any, Any] | None, list[int]]:
        """The first tokenize endpoint that answers a probe with token ids, and the ids it adds by itself
        (llama-cpp-python's adds a BOS where the vocabulary asks for one); those are dropped from every count,
        since the text counted already holds whatever BOS the template writes."""
        for endpoint, text_body, ids_body in _tokenize_bodies(self.model_name):
            try:
                response = self.client.post(
                    self.root_url + endpoint.tokenize_path, json=text_body("Hello world")
                )
            except httpx.TransportError:
                continue
            if response.status_code != 200:
                continue
            try:
                tokens = response.json().get("tokens")
            except (ValueError, AttributeError):
                continue
            if isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens):
                found = (endpoint, text_body, ids_body)
                empty = self._post(self.root_url + endpoint.tokenize_path, text_body("")).get("tokens") or []
                return found, [int(t) for t in empty]
        return None, []

    def _has_apply_template(self) -> bool:
        if self.server_kind not in ("llama.cpp", "openai"):
            return False
        try:
            response = self.client.post(
                self.root_url + "/apply-template", json={"messages": [{"role": "user", "content": "x"}]}
            )
        except httpx.TransportError:
            return False
        return (
            response.status_code == 200
            and isinstance(_json_or_none(response), dict)
            and "prompt" in response.json()
        )

    def _window(self, entry: dict[str, Any]) -> tuple[int, bool]:
        """The server's context window: the URI's option, else what the server reports (vLLM and SGLang in the
        model list, llama.cpp in /props), else the local tokenizer's trained window as an upper bound, else
        unbounded (a request over the real window then fails as a row, and its error teaches the window)."""
        if self.options.context_window:
            return self.options.context_window, True
        for key in ("max_model_len", "context_length", "context_window", "n_ctx"):
            if isinstance(entry.get(key), int) and entry[key] > 0:
                return int(entry[key]), True
        if self.server_kind == "llama.cpp":
            try:
                props = self.client.get(self.root_url + "/props").json()
                settings = props.get("default_generation_settings", {})
                n_ctx = settings.get("n_ctx") or props.get("n_ctx")
                if isinstance(n_ctx, int) and n_ctx > 0:
                    return n_ctx, True
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
        if self._local is not None and getattr(self._local, "context_window", 0):
            return int(self._local.context_window), False
        return 1 << 30, False

    def _template_source(self) -> str:
        if self.options.mode == "completion":
            return f"local:{self._local_uri}" if self._local is not None else "plain"
        if self._apply_template:
            return "server:apply-template"
        return f"local:{self._local_uri}" if self._local is not None else "none"

    def _prefill_mode(self) -> str:
        if self.options.mode == "completion":
            return "completion"
        if self.options.prefill != "auto":
            return self.options.prefill
        if self.server_kind in ("vllm", "sglang", "llama.cpp"):
            return "continue"
        # llama-cpp-python and unknown servers: only a prompt rendered here can end in the prefix.
        return "completion" if self.template_source != "none" else "continue"

    # -- HTTP with retries ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # Jitter spreads the retries of concurrent requests so they do not hit the server together again.
        return min(_MAX_BACKOFF_S, self.options.backoff * 2**attempt) * (0.5 + random.random() / 2)

    def _with_retries(self, what: str, attempt_once: Any) -> Any:
        last = ""
        for attempt in range(self.options.retries + 1):
            try:
                return attempt_once()
            except _Retryable as exc:
                last, wait = exc.reason, exc.wait
            except httpx.TransportError as exc:
                last, wait = _transport_reason(exc), None
            if attempt == self.options.retries:
                break
            wait = self._backoff(attempt) if wait is None else wait
            self._request_state.retries = getattr(self._request_state, "retries", 0) + 1
            with self._lock:
                self.retry_log.append(f"{what}: {last}; retry {attempt + 1} in {wait:.2f}s")
            time.sleep(wait)
        raise ServerError(f"{what} failed after {self.options.retries + 1} attempts; last error: {last}")

    def _check_status(self, response: httpx.Response, what: str) -> None:
        """Retry on 408, 429 and 5xx; any other error status is the server's answer to this request."""
        status = response.status_code
        if status < 400:
            return
        if status in (408, 429) or status >= 500:
            raise _Retryable(f"{status} {_error_text(response)}", _retry_after(response))
        text = _error_text(response)
        self._learn_window(text)
        if status in (401, 403):
            raise ServerError(f"{what}: the server refused the API key ({status}): {text}")
        raise ServerError(f"{what}: the server answered {status}: {text}")

    def _post(self, url: str, body: dict[str, Any], what: str = "") -> dict[str, Any]:
        def once() -> dict[str, Any]:
            response = self.client.post(url, json=body)
            self._check_status(response, what or url)
            return response.json()

        return self._with_retries(what or f"POST {url}", once)

    def _learn_window(self, text: str) -> None:
        match = _WINDOW_IN_ERROR.search(text)
        if match:
            window = int(next(g for g in match.groups() if g))
            with self._lock:
                if window < self.context_window:
                    self.context_window = window

    # -- tokens --------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        if self._tokenize is not None:
            endpoint, text_body, _ = self._tokenize
            ids = [
                int(t)
                for t in self._post(self.root_url + endpoint.tokenize_path, text_body(text), "tokenize")[
                    "tokens"
                ]
            ]
            prefix = self._auto_prefix
            return ids[len(prefix) :] if prefix and ids[: len(prefix)] == prefix else ids
        if self._local is not None:
            return self._local.encode(text)
        return self._approx.encode(text)

    def decode(self, ids: list[int]) -> str:
        if self._tokenize is not None:
            endpoint, _, ids_body = self._tokenize
            url = self.root_url + endpoint.detokenize_path
            # A slice that ends inside a multi-byte character makes llama-cpp-python's detokenize fail (500);
            # dropping up to three trailing ids gives the text up to the last whole character.
            for trim in range(4):
                part = list(ids[: len(ids) - trim]) if trim else list(ids)
                try:
                    response = self.client.post(url, json=ids_body(part))
                except httpx.TransportError:
                    return str(self._post(url, ids_body(part), "detokenize")[endpoint.text_key])
                if response.status_code == 200:
                    return str(response.json()[endpoint.text_key])
                if response.status_code < 500 or self._local is not None:
                    break
            if self._local is not None:
                return self._local.decode(ids)
            raise ServerError(
                f"detokenize: the server answered {response.status_code}: {_error_text(response)}"
            )
        if self._local is not None:
            return self._local.decode(ids)
        return self._approx.decode(ids)

    def count_tokens(self, text: str) -> int:
        if self._tokenize is not None:
            return len(self.encode(text))
        if self._local is not None:
            return self._local.count_tokens(text)
        return _ApproximateTokens.count(text)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        if self._tokenize is None:
            if self._local is not None and hasattr(self._local, "count_tokens_batch"):
                return list(self._local.count_tokens_batch(texts))
            return [self.count_tokens(t) for t in texts]
        if len(texts) < 8:
            return [self.count_tokens(t) for t in texts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(4, self.max_concurrency)) as pool:
            return list(pool.map(self.count_tokens, texts))

    def special_token_strings(self) -> list[str]:
        if self._local is not None:
            return list(self._local.special_token_strings())
        # Unknown vocabulary: the control-token spellings in common use, which no haystack should contain.
        return sorted(_GENERIC_SPECIALS)

    def tokenizer_fingerprint(self) -> str:
        """A hash of how tokens are counted and prompts rendered here: the counting source, the template
        source, the ids of a probe text and the rendering of a probe conversation."""
        if self._fingerprint is None:
            probe = "The quick brown fox, 12345 times: naïve café — 東京!\n\tdef f(x): return x**2"
            rendered = self.render([{"role": "user", "content": probe}], "Answer:")
            body = json.dumps(
                [self.token_count_source.split(":")[0], self.options.mode, self.template_source.split(":")[0],
                 self.encode(probe), rendered, self.token_count_exact],
                ensure_ascii=False,
            )  # fmt: skip
            self._fingerprint = hashlib.sha256(body.encode()).hexdigest()[:16]
        return self._fingerprint

    # -- prompts -------------------------------------------------------------------------------------

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "", chat: bool = True) -> str:
        """The prompt as the model will read it (see the module docstring for where the template comes from).
        A raw prompt (``chat`` False) goes to /completions as it is, after the BOS the server adds."""
        if not chat:
            text = "\n\n".join(m["content"] for m in messages) + answer_prefix
            return text if not self._bos_text or text.startswith(self._bos_text) else self._bos_text + text
        if self.template_source == "server:apply-template":
            prompt = str(
                self._post(self.root_url + "/apply-template", {"messages": messages}, "apply-template")[
                    "prompt"
                ]
            )
            return prompt + answer_prefix
        if self._local is not None:
            text = self._local.render(messages, answer_prefix)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n" + answer_prefix
        if self.options.mode == "completion" and self._auto_prefix and self._bos_text:
            text = text if text.startswith(self._bos_text) else self._bos_text + text
        return text

    # -- generation ----------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Generation:
        prompt = self.render(request.messages, request.answer_prefix, request.chat)
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens + request.max_new_tokens > self.context_window:
            raise ValueError(
                f"request of {prompt_tokens} + {request.max_new_tokens} tokens exceeds the server's context "
                f"window of {self.context_window}"
            )
        url, body = self._request_body(request, prompt)
        chat = url.endswith("/chat/completions")
        self._request_state.retries = 0
        stream = [self.options.stream]

        def once() -> dict[str, Any]:
            try:
                return self._send(url, {**body, "stream": stream[0]}, chat, stream[0])
            except _EmptyStream:
                # Ask again without streaming: the server then answers with its error status and reason.
                stream[0] = False
                return self._send(url, {**body, "stream": False}, chat, False)

        answer = self._with_retries(f"{'chat' if chat else 'completion'} request", once)
        raw = answer["text"]
        if request.stop:  # a server may stop late or not at all on strings; cut where the first one starts
            hits = [raw.find(s) for s in request.stop if s and s in raw]
            if hits:
                raw = raw[: min(hits)]
        usage = answer.get("usage") or {}
        output_tokens = usage.get("completion_tokens")
        if not isinstance(output_tokens, int):
            output_tokens = answer["chunks"] if answer["chunks"] else self.count_tokens(answer["text"])
        input_tokens = usage.get("prompt_tokens")
        return Generation(
            text=strip_reasoning(raw),
            input_tokens=int(input_tokens)
            if isinstance(input_tokens, int) and input_tokens > 0
            else prompt_tokens,
            output_tokens=int(output_tokens),
            prefill_s=answer["prefill_s"],
            decode_s=answer["decode_s"],
            wall_s=answer["wall_s"],
            finish_reason=str(answer.get("finish_reason") or "stop"),
            retries=self._request_state.retries,
        )

    def _request_body(self, request: GenerationRequest, prompt: str) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        stops = [s for s in request.stop if s][:_OPENAI_MAX_STOPS]
        if stops:
            body["stop"] = stops
        if self.server_kind == "llama-cpp-python":
            body["repeat_penalty"] = 1.0  # its default of 1.1 would make "greedy" differ from argmax decoding
        if self.server_kind == "llama.cpp":
            body["cache_prompt"] = False  # a reused prefix would make prefill times meaningless
        use_completion = (
            self.options.mode == "completion"
            or not request.chat
            or (request.answer_prefix and self.prefill_mode == "completion")
        )
        if use_completion:
            if self._auto_prefix and self._bos_text and prompt.startswith(self._bos_text):
                prompt = prompt[len(self._bos_text) :]
            return f"{self.base_url}/completions", {**body, "prompt": prompt}
        messages = [dict(m) for m in request.messages]
        if request.answer_prefix:
            messages.append({"role": "assistant", "content": request.answer_prefix})
            if self.server_kind in ("vllm", "sglang"):
                body.update(continue_final_message=True, add_generation_prompt=False)
        return f"{self.base_url}/chat/completions", {**body, "messages": messages}

    def _send(self, url: str, body: dict[str, Any], chat: bool, stream: bool) -> dict[str, Any]:
        """One request; the answer's text, usage, and time to first token where streaming gives it."""
        if stream:
            body = {**body, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        with self.client.stream("POST", url, json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._check_status(response, "generation")
            if "text/event-stream" not in response.headers.get("content-type", ""):
                response.read()
                data = response.json()
                wall = time.perf_counter() - started
                choice = (data.get("choices") or [{}])[0]
                text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
                return {
                    "text": text or "",
                    "usage": data.get("usage"),
                    "finish_reason": choice.get("finish_reason"),
                    "chunks": 0,
                    "prefill_s": wall,
                    "decode_s": 0.0,
                    "wall_s": wall,
                }
            parts: list[str] = []
            first: float | None = None
            usage = finish = None
            chunks = 0
            done = False
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": ping" comments, event names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    raise _Retryable(f"malformed event in the stream: {payload[:200]!r}") from None
                if isinstance(chunk, dict) and chunk.get("error"):
                    error = chunk["error"]
                    text = error.get("message", str(error)) if isinstance(error, dict) else str(error)
                    self._learn_window(text)
                    raise ServerError(f"generation: the server reported an error mid-stream: {text}")
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content") if chat else choice.get("text")
                    thought = delta.get("reasoning_content") or delta.get("reasoning")
                    if piece or thought:
                        chunks += 1
                        if first is None:
                            first = time.perf_counter()
                    if piece:
                        parts.append(piece)
                    finish = choice.get("finish_reason") or finish
        ended = time.perf_counter()
        if not done and finish is None:
            if chunks == 0 and usage is None:
                raise _EmptyStream()
            raise _Retryable("the stream ended before the answer was complete")
        first = first if first is not None else ended
        return {
            "text": "".join(parts),
            "usage": usage,
            "finish_reason": finish,
            "chunks": chunks,
            "prefill_s": first - started,
            "decode_s": ended - first,
            "wall_s": ended - started,
        }


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _transport_reason(exc: httpx.TransportError) -> str:
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

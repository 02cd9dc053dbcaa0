"""One generation request to an OpenAI-compatible server, read as server-sent events (to time the first token)
or as one JSON answer; a dropped or malformed stream is retryable, an error the server states is not."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from longscope.backends.http_transport import (
    CONNECT_TIMEOUT_S,
    Retryable,
    ServerError,
    Transport,
    answer_json,
)
from longscope.core import GenerationRequest

_OPENAI_MAX_STOPS = 4
# What is kept of an answer: at most this many characters per requested token (no tokenizer has tokens this
# long on average). A server that sends more (a runaway, a hostile or broken one) has the rest dropped, and
# the row says so with finish_reason "capped"; a non-streamed body past the same bound is not read at all.
CHARS_PER_TOKEN_KEPT = 32
CAPPED = "capped"


def kept_chars(max_new_tokens: int) -> int:
    """The most characters of an answer to a request for ``max_new_tokens`` tokens that are kept."""
    return CHARS_PER_TOKEN_KEPT * max(1, max_new_tokens)


class EmptyStream(Exception):
    """The server opened an event stream and closed it without a chunk: llama-cpp-python does this when the
    prompt is refused (too long), since its check runs after the 200 has gone out."""


@dataclass
class Answer:
    """What came back: the text, the server's usage (if any), and the times measured here."""

    text: str
    usage: dict[str, Any] | None
    finish_reason: str | None
    chunks: int  # streamed pieces that carried text or reasoning: output tokens when usage is missing
    prefill_s: float
    decode_s: float
    wall_s: float


def request_body(
    base_url: str, model: str, server_kind: str, request: GenerationRequest, prompt: str, completion: bool
) -> tuple[str, dict[str, Any]]:
    """The URL and body of one generation request: ``completion`` sends the rendered ``prompt`` to
    /completions, else the messages (with the answer prefix as an assistant turn to continue) go to
    /chat/completions."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_new_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
    }
    stops = [s for s in request.stop if s][:_OPENAI_MAX_STOPS]
    if stops:
        body["stop"] = stops
    if server_kind == "llama-cpp-python":
        body["repeat_penalty"] = 1.0  # its default of 1.1 would make "greedy" differ from argmax decoding
    if server_kind == "llama.cpp":
        body["cache_prompt"] = False  # a reused prefix would make prefill times meaningless
    if completion:
        return f"{base_url}/completions", {**body, "prompt": prompt}
    messages = [dict(m) for m in request.messages]
    if request.answer_prefix:
        messages.append({"role": "assistant", "content": request.answer_prefix})
        if server_kind in ("vllm", "sglang"):
            body.update(continue_final_message=True, add_generation_prompt=False)
    return f"{base_url}/chat/completions", {**body, "messages": messages}


def send(
    transport: Transport,
    url: str,
    body: dict[str, Any],
    chat: bool,
    stream: bool,
    timeout: float | None = None,
) -> Answer:
    """One request (no retries here); with streaming, prefill is the time to the first generated piece.
    ``timeout``: the longest silence allowed (None: the client's)."""
    if stream:
        body = {**body, "stream_options": {"include_usage": True}}
    limit = kept_chars(int(body.get("max_tokens") or 1))
    extra = (
        {} if timeout is None else {"timeout": httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S, pool=None)}
    )
    started = time.perf_counter()
    with transport.client.stream("POST", url, json=body, **extra) as response:
        if response.status_code >= 400:
            response.read()
            transport.check_status(response, "generation")
        if "text/event-stream" not in response.headers.get("content-type", ""):
            data = answer_json(response.status_code, _read_bounded(response, limit))
            wall = time.perf_counter() - started
            choices = data.get("choices")
            choice = (
                choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
            )
            text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
            text, finish = str(text or ""), choice.get("finish_reason")
            if len(text) > limit:
                text, finish = text[:limit], CAPPED
            return Answer(text, data.get("usage"), finish, 0, wall, 0.0, wall)
        parts: list[str] = []
        first: float | None = None
        usage = finish = None
        chunks = kept = 0
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
                raise Retryable(f"malformed event in the stream: {payload[:200]!r}") from None
            if isinstance(chunk, dict) and chunk.get("error"):
                error = chunk["error"]
                text = error.get("message", str(error)) if isinstance(error, dict) else str(error)
                transport.on_refusal(text)
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
                    kept += len(piece)
                finish = choice.get("finish_reason") or finish
            if kept > limit:  # stop reading a runaway answer; what was kept is cut to the bound below
                finish, done = CAPPED, True
                break
    ended = time.perf_counter()
    if not done and finish is None:
        if chunks == 0 and usage is None:
            raise EmptyStream()
        raise Retryable("the stream ended before the answer was complete")
    first = first if first is not None else ended
    text = "".join(parts)[:limit]
    return Answer(text, usage, finish, chunks, first - started, ended - first, ended - started)


def _read_bounded(response: httpx.Response, limit_chars: int) -> bytes:
    """Read a non-streamed body, refusing one far past what the request asked for (JSON escapes can take a
    character to 12 bytes, and the envelope a little more)."""
    bound = 12 * limit_chars + 65536
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > bound:
        raise ServerError(f"the server's answer of {int(declared):,} bytes is far more than was asked for")
    pieces, size = [], 0
    for piece in response.iter_bytes():
        size += len(piece)
        if size > bound:
            raise ServerError(f"the server's answer passed {bound:,} bytes, far more than was asked for")
        pieces.append(piece)
    return b"".join(pieces)

"""One generation request to an OpenAI-compatible server, read as server-sent events (to time the first token)
or as one JSON answer; a dropped or malformed stream is retryable, an error the server states is not."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from longscope.backends.http_transport import Retryable, ServerError, Transport
from longscope.core import GenerationRequest

_OPENAI_MAX_STOPS = 4


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


def send(transport: Transport, url: str, body: dict[str, Any], chat: bool, stream: bool) -> Answer:
    """One request (no retries here); with streaming, prefill is the time to the first generated piece."""
    if stream:
        body = {**body, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    with transport.client.stream("POST", url, json=body) as response:
        if response.status_code >= 400:
            response.read()
            transport.check_status(response, "generation")
        if "text/event-stream" not in response.headers.get("content-type", ""):
            response.read()
            data = response.json()
            wall = time.perf_counter() - started
            choice = (data.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
            return Answer(text or "", data.get("usage"), choice.get("finish_reason"), 0, wall, 0.0, wall)
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
                finish = choice.get("finish_reason") or finish
    ended = time.perf_counter()
    if not done and finish is None:
        if chunks == 0 and usage is None:
            raise EmptyStream()
        raise Retryable("the stream ended before the answer was complete")
    first = first if first is not None else ended
    return Answer("".join(parts), usage, finish, chunks, first - started, ended - first, ended - started)

"""A fake OpenAI-compatible server that answers at once, for tests of the wire that need no model."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeOpenAI:
    """Lists one model (``model``) and answers every chat or completion request with ``answer``, streamed as
    server-sent events when asked to stream. Records every request's path and headers for tests to read."""

    model: str = "fake"
    answer: str = "The special magic number is 42."
    # Every Nth generation request is refused with a 400 whose message echoes the request's credentials, as
    # careless servers do; 0: never.
    echo_every: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake._record(self)
                if self.path.startswith("/v1/models"):
                    _send(self, 200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})
                else:
                    _send(self, 404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                fake._record(self)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                if not self.path.endswith(("/chat/completions", "/completions")):
                    _send(self, 404, {"error": {"message": "not found"}})
                    return
                chat = self.path.endswith("/chat/completions")
                if fake._echo_now():
                    seen = self.headers.get("authorization", "")
                    if seen.startswith("Basic "):  # careless servers print the decoded user:password
                        seen = base64.b64decode(seen[6:]).decode("utf-8", "replace")
                    _send(self, 400, {"error": {"message": f"rejected request with {seen} at {self.path}"}})
                    return
                if body.get("stream"):
                    _stream(self, fake.answer, chat)
                else:
                    choice = (
                        {"message": {"role": "assistant", "content": fake.answer}}
                        if chat
                        else {"text": fake.answer}
                    )
                    _send(self, 200, {"choices": [{**choice, "finish_reason": "stop", "index": 0}]})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((handler.path, dict(handler.headers.items())))

    def _echo_now(self) -> bool:
        with self._lock:
            self._generations = getattr(self, "_generations", 0) + 1
            return bool(self.echo_every) and self._generations % self.echo_every == 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(data)


def _stream(handler: BaseHTTPRequestHandler, answer: str, chat: bool) -> None:
    pieces = [answer[i : i + 4096] for i in range(0, len(answer), 4096)] or [""]
    events = []
    for piece in pieces:
        choice = {"delta": {"content": piece}} if chat else {"text": piece}
        events.append({"choices": [{**choice, "index": 0, "finish_reason": None}]})
    events.append({"choices": [{"delta": {} if chat else None, "index": 0, "finish_reason": "stop"}]})
    data = (
        b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"
    )
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client stopped reading a capped answer
        handler.wfile.write(data)

"""A loopback HTTP proxy for tests that injects faults (5xx, 429, stalls, dropped connections) by a schedule."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Requests that generate text: the faults are aimed at these. Tokenize calls and the model list pass through
# unless a test says otherwise, so that building samples is not what the faults exercise.
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


@dataclass
class Logged:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    action: str


@dataclass
class FaultProxy:
    """Forwards to ``upstream``; each generation request takes the next action from ``schedule``.

        Actions: ``"pass"``; ``"500"`` (or any status, answered with an OpenAI-style error body);
        ``"429:SECONDS"`` (Retry-After in seconds); ``"stall:SECONDS"`` (say nothing for that long, then close);
        ``"drop"`` (close the connection without a byte); ``"drop-mid"`` (forward, then cut the answer off
        after its first bytes); ``"invalid-json"`` and ``"empty-200"`` (a 200 whose JSON body is cut short, or
    empty). When the schedule is empty, requests pass. ``fail_paths`` answers every request
        whose path starts with one of them with that status (e.g. ``{"/v1/models": 401}``), and
        ``models_patch`` adds fields to each entry of the model list (e.g. a reported ``max_model_len``).
    """

    upstream: str
    schedule: list[str] = field(default_factory=list)
    fail_paths: dict[str, int] = field(default_factory=dict)
    models_patch: dict = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(600.0, connect=5.0))
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 so forwarded streams are chunked and a cut shows as an incomplete body; every answer
            # closes its connection, so a dropped one cannot poison the next request.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    # -- what the test reads -------------------------------------------------------------------------

    def generation_log(self) -> list[Logged]:
        with self._lock:
            return [entry for entry in self.log if entry.path in GENERATION_PATHS]

    # -- handling ------------------------------------------------------------------------------------

    def _next_action(self, path: str) -> str:
        with self._lock:
            for prefix, status in self.fail_paths.items():
                if path.startswith(prefix):
                    return str(status)
            if path in GENERATION_PATHS and self.schedule:
                return self.schedule.pop(0)
            return "pass"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        # The client may give up on a request (its timeout), which is what some tests provoke.
        with contextlib.suppress(OSError, httpx.TransportError):
            self._serve(handler, method)

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        action = self._next_action(handler.path)
        with self._lock:
            self.log.append(Logged(time.monotonic(), method, handler.path, action))
        kind, _, argument = action.partition(":")
        if kind == "pass":
            self._forward(handler, method, body)
        elif kind == "drop-mid":
            self._forward(handler, method, body, cut_after=1)
        elif kind == "drop":
            _drop(handler)
        elif kind == "stall":
            time.sleep(float(argument))
            _drop(handler)
        elif kind == "429":
            _reply(handler, 429, {"error": {"message": "rate limited"}}, {"Retry-After": argument or "1"})
        elif kind == "invalid-json":
            _reply_bytes(handler, 200, b'{"choices": [{"message": ')
        elif kind == "empty-200":
            _reply_bytes(handler, 200, b"")
        else:
            _reply(handler, int(kind), {"error": {"message": f"injected {kind}"}})

    def _forward(self, handler: BaseHTTPRequestHandler, method: str, body: bytes, cut_after: int = 0) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("content-type", "authorization")}
        request = self._client.build_request(
            method, self.upstream + handler.path, content=body, headers=headers
        )
        response = self._client.send(request, stream=True)
        try:
            if handler.path.startswith("/v1/models") and self.models_patch and response.status_code == 200:
                data = json.loads(response.read())
                for entry in data.get("data", []):
                    entry.update(self.models_patch)
                _reply(handler, 200, data)
                return
            handler.send_response(response.status_code)
            handler.send_header("Content-Type", response.headers.get("content-type", "application/json"))
            handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("Connection", "close")
            handler.end_headers()
            sent = 0
            for chunk in response.iter_raw():
                if not chunk:
                    continue
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()  # stream as it comes, so the client can time the first token
                sent += 1
                if cut_after and sent >= cut_after:
                    _drop(handler)
                    return
            handler.wfile.write(b"0\r\n\r\n")
        finally:
            response.close()


def _reply(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    _reply_bytes(handler, status, json.dumps(payload).encode(), headers)


def _reply_bytes(
    handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict | None = None
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Connection", "close")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _drop(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection at once, as a crashed server or a broken network would."""
    handler.close_connection = True
    try:
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

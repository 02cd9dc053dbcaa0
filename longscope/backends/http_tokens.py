"""Token counts for the OpenAI-compatible backend, from the first source there is: the server's tokenize
endpoint, a local tokenizer the URI names, or an estimate of one token per four characters."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from longscope.backends.http_transport import ServerError, Transport, error_text
from longscope.backends.uri import parse_model_uri
from longscope.core import UsageError

_BATCH_IN_THREADS_FROM = 8  # fewer texts than this are not worth a thread pool


class ApproximateTokens:
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


@dataclass(frozen=True)
class TokenizeEndpoint:
    """Where a server kind tokenizes and detokenizes, the request bodies for text and for ids, and the key
    the detokenized text comes back under."""

    name: str
    tokenize_path: str
    detokenize_path: str
    text_key: str
    text_body: Callable[[str], dict[str, Any]]
    ids_body: Callable[[list[int]], dict[str, Any]]


def tokenize_endpoints(model: str) -> list[TokenizeEndpoint]:
    """The tokenize endpoints servers have, in the order probed."""
    return [
        TokenizeEndpoint(
            "llama-cpp-python", "/extras/tokenize", "/extras/detokenize", "text",
            lambda text: {"input": text, "model": model},
            lambda ids: {"tokens": ids, "model": model},
        ),
        TokenizeEndpoint(
            "llama.cpp", "/tokenize", "/detokenize", "content",
            lambda text: {"content": text, "add_special": False, "parse_special": True},
            lambda ids: {"tokens": ids},
        ),
        TokenizeEndpoint(
            "vllm", "/tokenize", "/detokenize", "prompt",
            lambda text: {"model": model, "prompt": text, "add_special_tokens": False},
            lambda ids: {"model": model, "tokens": ids},
        ),
    ]  # fmt: skip


def find_tokenize_endpoint(
    transport: Transport, root_url: str, model: str
) -> tuple[TokenizeEndpoint | None, list[int]]:
    """The first tokenize endpoint that answers a probe with token ids, and the ids it adds by itself
    (llama-cpp-python's adds a BOS where the vocabulary asks for one); those are dropped from every count,
    since the text counted already holds whatever BOS the template writes."""
    for endpoint in tokenize_endpoints(model):
        try:
            response = transport.client.post(
                root_url + endpoint.tokenize_path, json=endpoint.text_body("Hello world")
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
            empty = transport.post(root_url + endpoint.tokenize_path, endpoint.text_body("")).get("tokens")
            return endpoint, [int(t) for t in empty or []]
    return None, []


def local_tokenizer_uri(option: str | None, model_name: str) -> str | None:
    """The ``tokenizer`` option, else the model id when it is a path to a GGUF file here (llama-cpp-python
    names a model by its path unless given an alias, so that file's tokenizer is the server's)."""
    if option is not None:
        return option
    if model_name.endswith(".gguf") and Path(model_name).is_file():
        return f"gguf:{Path(model_name)}"
    return None


def load_local_tokenizer(uri: str) -> Any:
    """A tokenizer and chat template without weights: ``gguf:PATH``, ``hf:PATH_OR_ID`` or ``smollm2``."""
    wrong = f"tokenizer={uri!r}: give gguf:PATH, hf:PATH_OR_ID or smollm2"
    try:
        parsed = parse_model_uri(uri)
    except UsageError:
        raise UsageError(wrong) from None
    if (parsed.bare and parsed.scheme == "smollm2") or parsed.scheme == "gguf":
        from longscope.backends.llamacpp import GGUFTokenizer

        path = parsed.location
        if parsed.bare:
            from longscope.backends.smollm2 import gguf_path

            path = str(gguf_path())
        return GGUFTokenizer(path)
    if parsed.scheme == "hf" and parsed.location:
        from transformers import AutoTokenizer

        from longscope.backends.hf import HFTokenizer, quiet_transformers

        quiet_transformers()
        try:
            tokenizer = AutoTokenizer.from_pretrained(parsed.location)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot load tokenizer {parsed.location!r}: {first}") from None
        return HFTokenizer(tokenizer, name=parsed.location)
    raise UsageError(wrong)


class TokenCounter:
    """Encodes, decodes and counts through the best source found; ``source`` says which (``server:NAME``,
    ``local:URI`` or ``approximate``). ``local`` also renders prompts where the backend needs a template."""

    def __init__(
        self,
        transport: Transport,
        root_url: str,
        model: str,
        local: Any | None,
        local_uri: str | None,
        concurrency: int = 1,
    ) -> None:
        self.transport = transport
        self.root_url = root_url
        self.local = local
        self.concurrency = concurrency
        self.endpoint, self.auto_prefix = find_tokenize_endpoint(transport, root_url, model)
        self._approx = ApproximateTokens()
        if self.endpoint is not None:
            self.source = f"server:{self.endpoint.name}"
        elif local is not None:
            self.source = f"local:{local_uri}"
        else:
            self.source = "approximate"

    def encode(self, text: str) -> list[int]:
        if self.endpoint is not None:
            url = self.root_url + self.endpoint.tokenize_path
            ids = [
                int(t) for t in self.transport.post(url, self.endpoint.text_body(text), "tokenize")["tokens"]
            ]
            prefix = self.auto_prefix
            return ids[len(prefix) :] if prefix and ids[: len(prefix)] == prefix else ids
        if self.local is not None:
            return self.local.encode(text)
        return self._approx.encode(text)

    def decode(self, ids: list[int]) -> str:
        endpoint = self.endpoint
        if endpoint is None:
            return self.local.decode(ids) if self.local is not None else self._approx.decode(ids)
        url = self.root_url + endpoint.detokenize_path
        # A slice that ends inside a multi-byte character makes llama-cpp-python's detokenize fail (500);
        # dropping up to three trailing ids gives the text up to the last whole character.
        for trim in range(4):
            part = list(ids[: len(ids) - trim]) if trim else list(ids)
            try:
                response = self.transport.client.post(url, json=endpoint.ids_body(part))
            except httpx.TransportError:
                return str(self.transport.post(url, endpoint.ids_body(part), "detokenize")[endpoint.text_key])
            if response.status_code == 200:
                return str(response.json()[endpoint.text_key])
            if response.status_code < 500 or self.local is not None:
                break
        if self.local is not None:
            return self.local.decode(ids)
        raise ServerError(f"detokenize: the server answered {response.status_code}: {error_text(response)}")

    def count(self, text: str) -> int:
        if self.endpoint is not None:
            return len(self.encode(text))
        if self.local is not None:
            return self.local.count_tokens(text)
        return ApproximateTokens.count(text)

    def count_batch(self, texts: list[str]) -> list[int]:
        if self.endpoint is None:
            if self.local is not None:
                return list(self.local.count_tokens_batch(texts))
            return [self.count(t) for t in texts]
        if len(texts) < _BATCH_IN_THREADS_FROM:
            return [self.count(t) for t in texts]
        from concurrent.futures import ThreadPoolExecutor

        # One request per text: in flight together, the server's tokenizer is the only wait.
        with ThreadPoolExecutor(max_workers=max(4, self.concurrency)) as pool:
            return list(pool.map(self.count, texts))

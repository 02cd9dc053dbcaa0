"""The ``openai:`` scheme's options and target (``BASE_URL#MODEL?options``), checked without reaching the server.

The options are documented in ``longscope.backends.http``. Every mistake is a UsageError naming it, so that a
bad URI fails before any work starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from longscope import redact
from longscope.backends.uri import ModelURI, parse_model_uri
from longscope.core import UsageError


@dataclass(frozen=True)
class Options:
    mode: str = "chat"
    concurrency: int = 1
    timeout: float | None = None  # None: follows each request's size (http_transport.generation_timeout)
    retries: int = 5
    backoff: float = 1.0
    api_key_env: str | None = None
    tokenizer: str | None = None
    stream: bool = True
    context_window: int | None = None
    prefill: str = "auto"
    # Prices per million input / output tokens, for a judge's cost (longscope.judging.cost); the backend ignores them.
    price_in: float | None = None
    price_out: float | None = None


@dataclass(frozen=True)
class Target:
    base_url: str
    model: str
    options: Options = field(default_factory=Options)


# Upper bounds that keep a mistyped number from starting a billion threads or retrying for ever.
_INT_MAX = {"concurrency": 4096, "retries": 1000, "context_window": 2**40}
_CHOICES = {"mode": ("chat", "completion"), "prefill": ("auto", "continue", "completion")}


def parse_target(target: str) -> Target:
    """Read ``BASE_URL#MODEL?options`` (what follows ``openai:``); every mistake is a UsageError naming it."""
    return target_of(parse_model_uri("openai:" + target))


def target_of(uri: ModelURI) -> Target:
    """The server, model and checked options of a parsed ``openai:`` URI; the API key variable must be set."""
    redact.register_found(uri.text)  # a key written into the URL is masked wherever it shows up later
    values: dict[str, Any] = {}
    known = [f.name for f in fields(Options)]
    for key, raw in uri.options:
        if key not in known:
            raise UsageError(f"unknown option {key!r} in the model URI; known options: {', '.join(known)}")
        values[key] = _option_value(key, raw)
    options = Options(**values)
    if options.api_key_env is not None and not os.environ.get(options.api_key_env):
        raise UsageError(
            f"the environment variable {options.api_key_env} (api_key_env) is not set; export the API key in it"
        )
    return Target(base_url=uri.location, model=uri.model, options=options)


def check_uri(uri: ModelURI) -> None:
    """The scheme's cheap check: the target parses and its options are known and valid."""
    target_of(uri)


def _option_value(key: str, raw: str) -> Any:
    try:
        if key in ("concurrency", "retries", "context_window"):
            value: Any = int(raw)
            if not (0 if key == "retries" else 1) <= value <= _INT_MAX[key]:
                raise ValueError
        elif key in ("price_in", "price_out"):
            value = float(raw)
            if not value >= 0:
                raise ValueError
        elif key in ("timeout", "backoff"):
            value = float(raw)
            if not math.isfinite(value) or (not value > 0 and not (key == "backoff" and value == 0)):
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

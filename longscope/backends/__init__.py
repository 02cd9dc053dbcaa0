"""Model backends, chosen by a model URI (``smollm2``, ``hf:PATH_OR_ID``, ``gguf:PATH``, ``openai:URL#MODEL``)
through a registry of URI schemes: each scheme names its backend module's cheap check and loader."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from longscope.backends.uri import ModelURI, parse_model_uri
from longscope.core import Backend, Registry, UsageError


def _no_check(uri: ModelURI) -> None:
    return None


@dataclass(frozen=True)
class Scheme:
    """One way to name a model. ``check`` is cheap (reads a few bytes, no network, no weights) and raises a
    one-line UsageError; ``load`` builds the backend. ``bare``: the name alone is the whole URI (``smollm2``)."""

    syntax: str  # how the URI is written and what it names, for the list of accepted URIs
    load: Callable[[ModelURI], Backend]
    check: Callable[[ModelURI], None] = _no_check
    bare: bool = False
    rank: int = 100  # place in the list of accepted URIs
    precisions: tuple[str, ...] = ()  # weight precisions ``?precision=`` may ask for; none: refused


def deferred(module: str, name: str) -> Callable[[ModelURI], Any]:
    """``module.name``, imported at its first call: registering a scheme must not import torch at start."""

    def call(uri: ModelURI) -> Any:
        return getattr(importlib.import_module(module), name)(uri)

    call.__qualname__ = f"{module}.{name}"
    return call


SCHEMES: Registry[Scheme] = Registry("model scheme")
_IN_PROCESS_PRECISIONS = ("fp32", "bf16")  # as longscope.backends.hf.PRECISIONS, without importing torch here

SCHEMES.add(
    "smollm2",
    Scheme(
        "smollm2[?precision=fp32|bf16] (the bundled default)",
        deferred("longscope.backends.smollm2", "load_uri"),
        bare=True,
        rank=0,
        precisions=_IN_PROCESS_PRECISIONS,
    ),
)
SCHEMES.add(
    "hf",
    Scheme(
        "hf:PATH_OR_ID[?precision=fp32|bf16] (transformers)",
        deferred("longscope.backends.hf", "load_uri"),
        rank=1,
        precisions=_IN_PROCESS_PRECISIONS,
    ),
)
SCHEMES.add(
    "gguf",
    Scheme(
        "gguf:PATH (a GGUF file run by llama.cpp)",
        deferred("longscope.backends.llamacpp", "load_uri"),
        deferred("longscope.backends.llamacpp", "check_uri"),
        rank=2,
    ),
)
SCHEMES.add(
    "openai",
    Scheme(
        "openai:BASE_URL#MODEL[?options] (an OpenAI-compatible server, "
        "e.g. openai:http://127.0.0.1:8080/v1#my-model)",
        deferred("longscope.backends.http", "load_uri"),
        deferred("longscope.backends.http_options", "check_uri"),
        rank=3,
    ),
)


def accepted() -> str:
    """The URIs every registered scheme accepts, in words."""
    syntaxes = [
        scheme.syntax for _, scheme in sorted(SCHEMES.items(), key=lambda item: (item[1].rank, item[0]))
    ]
    return syntaxes[0] if len(syntaxes) == 1 else ", ".join(syntaxes[:-1]) + " or " + syntaxes[-1]


def parse_uri(uri: str) -> ModelURI:
    """Parse and check a model URI without loading anything, so bad input fails before work.

    Cheap checks happen here too: a ``gguf:`` file must exist and start with the GGUF magic bytes, and an
    ``openai:`` URI must have a model, known options and its API key variable set.
    """
    parsed = parse_model_uri(uri)
    scheme = SCHEMES.get(parsed.scheme) if parsed.scheme in SCHEMES else None
    if scheme is None or scheme.bare != parsed.bare or not (parsed.bare or parsed.target):
        raise UsageError(f"unknown model {uri.strip()!r}; give {accepted()}")
    _check_precision(parsed, scheme)
    scheme.check(parsed)
    return parsed


def _check_precision(parsed: ModelURI, scheme: Scheme) -> None:
    """A ``precision=`` option only where the backend can load weights in it, else one UsageError line."""
    asked = parsed.option("precision")
    if asked is None:
        return
    if not scheme.precisions:
        raise UsageError(
            f"the {parsed.scheme} backend cannot honour precision={asked}: it serves its weights as "
            "they are stored; precision= is for the in-process models (smollm2, hf:)"
        )
    if asked not in scheme.precisions:
        raise UsageError(
            f"unknown precision {asked!r} in {parsed.text!r}; give one of {', '.join(scheme.precisions)}"
        )


def resolve(uri: str) -> Backend:
    """Load the backend a model URI names."""
    parsed = parse_uri(uri)
    return SCHEMES.get(parsed.scheme).load(parsed)

"""The one parser of model URIs: ``smollm2``, ``hf:PATH_OR_ID``, ``gguf:PATH``, ``openai:BASE_URL#MODEL?k=v``.

Every scheme may end in ``?precision=NAME`` (``smollm2?precision=bf16``, ``hf:PATH?precision=bf16``); it is
split off only when the query is exactly that option, so a path or hub id holding a ``?`` stays whole. Which
schemes honour it is the registry's business.

Only the syntax is read here; whether a scheme exists, and the cheap checks its backend makes before loading
anything, belong to the scheme registry in ``longscope.backends``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from longscope.core import UsageError

# Schemes whose target names a server rather than a file or a hub id: the model id and the options ride in
# the fragment and the query, as in ``openai:http://127.0.0.1:8080/v1#my-model?mode=chat``.
SERVER_SCHEMES = ("openai",)


@dataclass(frozen=True)
class ModelURI:
    """A model URI taken apart once. ``target`` is everything after ``scheme:``; for a server scheme it is
    split again into ``location`` (the base URL), ``model`` and ``options``, and for every other scheme
    ``location`` is the target itself (a path or a hub id). ``bare``: a name written without any colon."""

    scheme: str
    target: str = ""
    location: str = ""
    model: str = ""
    options: tuple[tuple[str, str], ...] = ()  # in the order written
    bare: bool = False
    suffix: str = ""  # a trailing ``?precision=...`` taken off a non-server URI, as written

    @property
    def text(self) -> str:
        """The URI as written, without the whitespace around its parts."""
        return (self.scheme if self.bare else f"{self.scheme}:{self.target}") + self.suffix

    def option(self, key: str) -> str | None:
        """The last value given for option ``key``, or None."""
        values = [value for name, value in self.options if name == key]
        return values[-1] if values else None


def _split_precision(text: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """``text`` without a trailing ``?precision=NAME`` query, that option, and the suffix as written."""
    head, mark, query = text.rpartition("?")
    options = tuple(parse_qsl(query, keep_blank_values=True)) if mark else ()
    if not options or any(name != "precision" for name, _ in options):
        return text, (), ""
    return head.strip(), options, mark + query


def parse_model_uri(text: str) -> ModelURI:
    """Take a model URI apart. Raises UsageError only for a malformed server target (no model, not http)."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    rest = rest.strip()
    if not colon:
        name, options, suffix = _split_precision(text)
        return ModelURI(scheme=name, bare=True, options=options, suffix=suffix)
    if scheme not in SERVER_SCHEMES or not rest:
        rest, options, suffix = _split_precision(rest)
        return ModelURI(scheme=scheme, target=rest, location=rest, options=options, suffix=suffix)
    base, model, options = _split_server_target(scheme, rest)
    return ModelURI(scheme=scheme, target=rest, location=base, model=model, options=options)


def _split_server_target(scheme: str, target: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    syntax = f"write {scheme}:BASE_URL#MODEL, e.g. {scheme}:http://127.0.0.1:8080/v1#my-model?mode=chat"
    base, hash_sign, rest = target.partition("#")
    base = base.strip().rstrip("/")
    model, _, query = rest.partition("?")
    model = model.strip()
    if not hash_sign or not model:
        raise UsageError(f"no model in {(scheme + ':' + target)!r}; {syntax}")
    if not re.match(r"^https?://[^/\s]+", base):
        raise UsageError(f"the server address {base!r} is not an http:// or https:// URL; {syntax}")
    return base, model, tuple(parse_qsl(query, keep_blank_values=True))

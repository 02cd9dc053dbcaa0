"""The one parser of model URIs: ``smollm2``, ``hf:PATH_OR_ID``, ``gguf:PATH``, ``openai:BASE_URL#MODEL?k=v``.

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

    @property
    def text(self) -> str:
        """The URI as written, without the whitespace around its parts."""
        return self.scheme if self.bare else f"{self.scheme}:{self.target}"


def parse_model_uri(text: str) -> ModelURI:
    """Take a model URI apart. Raises UsageError only for a malformed server target (no model, not http)."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    rest = rest.strip()
    if not colon:
        return ModelURI(scheme=text, bare=True)
    if scheme not in SERVER_SCHEMES or not rest:
        return ModelURI(scheme=scheme, target=rest, location=rest)
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

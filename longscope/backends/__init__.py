"""Model backends, chosen by a model URI: ``smollm2``, ``hf:PATH_OR_ID``, ``gguf:PATH`` or ``openai:URL#MODEL``."""

from __future__ import annotations

from longscope.core import Backend, UsageError

ACCEPTED = (
    "smollm2 (the bundled default), hf:PATH_OR_ID (transformers), gguf:PATH (a GGUF file run by llama.cpp) "
    "or openai:BASE_URL#MODEL[?options] (an OpenAI-compatible server, e.g. openai:http://127.0.0.1:8080/v1#my-model)"
)


def parse_uri(uri: str) -> tuple[str, str]:
    """Split a model URI into (scheme, target) without loading anything, so bad input fails before work.

    Cheap checks happen here too: a ``gguf:`` file must exist and start with the GGUF magic bytes, and an
    ``openai:`` URI must have a model, known options and its API key variable set.
    """
    uri = uri.strip()
    if uri == "smollm2":
        return "smollm2", ""
    scheme, _, rest = uri.partition(":")
    rest = rest.strip()
    if scheme == "hf" and rest:
        return scheme, rest
    if scheme == "gguf" and rest:
        from longscope.backends.llamacpp import check_gguf

        check_gguf(rest)
        return scheme, rest
    if scheme == "openai" and rest:
        from longscope.backends.http import parse_target

        parse_target(rest)
        return scheme, rest
    raise UsageError(f"unknown model {uri!r}; give {ACCEPTED}")


def resolve(uri: str) -> Backend:
    """Load the backend a model URI names."""
    scheme, target = parse_uri(uri)
    if scheme == "smollm2":
        from longscope.backends import smollm2

        return smollm2.load()
    if scheme == "gguf":
        from longscope.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend.load(target)
    if scheme == "openai":
        from longscope.backends.http import OpenAIBackend

        return OpenAIBackend.connect(target)
    from longscope.backends.hf import HFBackend

    return HFBackend.load(target)

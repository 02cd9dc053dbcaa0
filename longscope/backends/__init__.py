"""Model backends, chosen by a model URI: ``smollm2`` (the bundled default) or ``hf:PATH_OR_ID``."""

from __future__ import annotations

from longscope.core import Backend, UsageError

ACCEPTED = "smollm2 (the bundled default) or hf:PATH_OR_ID"


def parse_uri(uri: str) -> tuple[str, str]:
    """Split a model URI into (scheme, target) without loading anything, so bad input fails before work."""
    uri = uri.strip()
    if uri == "smollm2":
        return "smollm2", ""
    scheme, _, rest = uri.partition(":")
    if scheme == "hf" and rest:
        return scheme, rest
    raise UsageError(f"unknown model {uri!r}; give {ACCEPTED}")


def resolve(uri: str) -> Backend:
    """Load the backend a model URI names."""
    scheme, target = parse_uri(uri)
    if scheme == "smollm2":
        from longscope.backends import smollm2

        return smollm2.load()
    from longscope.backends.hf import HFBackend

    return HFBackend.load(target)

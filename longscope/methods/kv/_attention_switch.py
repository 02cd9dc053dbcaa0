"""Route a model's attention through a registered function for a while, and back afterwards, even on error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any


@contextlib.contextmanager
def attention_function(model: Any, name: str, active: ContextVar, run: Any) -> Iterator[None]:
    """While inside, ``model`` attends through the attention function registered as ``name`` (and its
    sub-configs too), which reads ``run`` from ``active``: the method's state for this pass."""
    config = model.config
    previous = {"": config._attn_implementation}
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if sub is not None:
            previous[key] = sub._attn_implementation
    token = active.set(run)
    try:
        config._attn_implementation = name
        yield
    finally:
        config._attn_implementation = previous
        active.reset(token)

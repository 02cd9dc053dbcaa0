"""Methods by name, and the ``name:ratio`` / ``name:budget=N`` / ``name(param=value,...)`` syntax of --methods."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from longscope.core import Registry, UsageError, configure
from longscope.methods.base import ContextState, KVMethod, Method, PromptMethod
from longscope.spec import parse_amount, parse_params, parse_spec, split_list

METHODS: Registry[type[Method]] = Registry("method", loader=lambda: _discover())
# Methods whose spec is not NAME(...) but a name with its own syntax after the colon (kvpress:PressName(...)).
SPEC_PARSERS: dict[str, Any] = {}


def _discover() -> None:
    """Register every Method subclass with a name from methods/kv/ and methods/prompt/: one file per method."""
    for family in ("kv", "prompt"):
        package = importlib.import_module(f"{__name__}.{family}")
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.startswith("_"):
                continue
            loaded = importlib.import_module(f"{package.__name__}.{module.name}")
            for value in vars(loaded).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, Method)
                    and value.name
                    and value.__module__ == loaded.__name__
                ):
                    METHODS.add(value.name, value)
            parser = getattr(loaded, "parse_spec", None)
            prefix = getattr(loaded, "SPEC_PREFIX", None)
            if parser is not None and prefix:
                SPEC_PARSERS[prefix] = parser


def parse_args(text: str, where: str) -> dict[str, Any]:
    return parse_params(text, where)


def make_method(spec: str) -> Method:
    """``snapkv:0.5`` / ``snapkv:budget=1024`` / ``squeezed(levels=2):0.25`` / ``kvpress:TOVAPress:0.5``."""
    METHODS._load()  # also fills SPEC_PARSERS
    head = spec.strip()
    prefix, sep, rest = head.partition(":")
    if sep and prefix in SPEC_PARSERS:
        return SPEC_PARSERS[prefix](rest, spec)
    parsed = parse_spec(head, "method")
    cls = METHODS.get(parsed.name)
    params = dict(parsed.params)
    params.update(parse_amount(parsed.amount, f"method {cls.name}"))
    return build(cls, params)


def build(cls: type[Method], params: dict[str, Any]) -> Method:
    """Validate parameters against the method's dataclass fields, with one line naming what is accepted."""
    return configure(cls, params, "method")


def parse_methods(text: str) -> list[Method]:
    methods = [make_method(item) for item in split_list(text)]
    if not methods:
        raise UsageError("no methods given; write for example --methods full,snapkv:0.5")
    labels = [m.label() for m in methods]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise UsageError(f"method {dupes[0]} is given twice in --methods")
    return methods


__all__ = [
    "METHODS", "ContextState", "KVMethod", "Method", "PromptMethod", "make_method", "parse_amount",
    "parse_methods",
]  # fmt: skip

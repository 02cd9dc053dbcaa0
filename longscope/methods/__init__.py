"""Methods by name, and the ``name:ratio`` / ``name:budget=N`` / ``name(param=value,...)`` syntax of --methods."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from longscope.core import Registry, UsageError, configure
from longscope.methods.base import ContextState, KVMethod, Method

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


_SPEC = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\((.*)\))?\s*(?::\s*(.*?))?\s*$")


def parse_value(text: str) -> Any:
    """A parameter value as written on the command line: int, float, bool, None or string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip().strip("'\"")


def parse_args(text: str, where: str) -> dict[str, Any]:
    from longscope.tasks import split_list

    params: dict[str, Any] = {}
    for pair in split_list(text):
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"{where}: parameter {pair!r} needs the form name=value")
        params[name.strip()] = parse_value(value)
    return params


def parse_amount(text: str | None, where: str) -> dict[str, Any]:
    """The part after the colon: ``0.5`` is a ratio, ``budget=1024`` (or ``ratio=0.5``) names it."""
    if not text:
        return {}
    name, sep, value = text.partition("=")
    if not sep:
        try:
            return {"ratio": float(text)}
        except ValueError:
            raise UsageError(
                f"{where}: cannot read {text!r}; write a ratio in [0, 1) like :0.5, or :budget=1024"
            ) from None
    key = name.strip()
    if key not in ("ratio", "budget"):
        raise UsageError(
            f"{where}: after the colon write a ratio (:0.5) or a budget (:budget=1024), not {key!r}"
        )
    return {key: parse_value(value)}


def make_method(spec: str) -> Method:
    """``snapkv:0.5`` / ``snapkv:budget=1024`` / ``squeezed(levels=2):0.25`` / ``kvpress:TOVAPress:0.5``."""
    METHODS._load()  # also fills SPEC_PARSERS
    head = spec.strip()
    prefix, sep, rest = head.partition(":")
    if sep and prefix in SPEC_PARSERS:
        return SPEC_PARSERS[prefix](rest, spec)
    match = _SPEC.match(head)
    if not match:
        raise UsageError(
            f"cannot read method {spec!r}; write NAME, NAME:RATIO, NAME:budget=N or NAME(param=value)"
        )
    cls = METHODS.get(match.group(1))
    params = parse_args(match.group(2) or "", f"method {cls.name}")
    params.update(parse_amount(match.group(3), f"method {cls.name}"))
    return build(cls, params)


def build(cls: type[Method], params: dict[str, Any]) -> Method:
    """Validate parameters against the method's dataclass fields, with one line naming what is accepted."""
    return configure(cls, params, "method")


def parse_methods(text: str) -> list[Method]:
    from longscope.tasks import split_list

    methods = [make_method(item) for item in split_list(text)]
    if not methods:
        raise UsageError("no methods given; write for example --methods full,snapkv:0.5")
    labels = [m.label() for m in methods]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise UsageError(f"method {dupes[0]} is given twice in --methods")
    return methods


__all__ = ["METHODS", "ContextState", "KVMethod", "Method", "make_method", "parse_methods"]

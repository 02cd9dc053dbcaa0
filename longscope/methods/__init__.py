"""Methods by name, and the ``name:ratio`` / ``name:budget=N`` / ``name(param=value,...)`` syntax of --methods."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from longscope.core import Registry, UsageError, configure
from longscope.methods.base import ContextState, KVMethod, Method, PromptMethod
from longscope.spec import parse_amount, parse_spec, split_list

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


# A sweep inside a method's parameters: ``k=1..32`` (doubling from the first value: 1,2,4,...,32, the last
# added when doubling skips it) or ``k=1|4|16`` (the values listed).
_SWEEP = re.compile(r"(?<=[(,])\s*([A-Za-z_]\w*)\s*=\s*(\d+\.\.\d+|[^,()|]+(?:\|[^,()|]+)+)\s*(?=[,)])")


def _sweep_values(text: str, where: str) -> list[str]:
    if ".." not in text:
        return [value.strip() for value in text.split("|")]
    low, high = (int(part) for part in text.split(".."))
    if not 1 <= low <= high:
        raise UsageError(f"{where}: sweep {text} needs 1 <= first <= last, e.g. k=1..32")
    values = []
    while low <= high:
        values.append(low)
        low *= 2
    if values[-1] != high:
        values.append(high)
    return [str(value) for value in values]


def expand_sweeps(item: str) -> list[str]:
    """One method spec per combination of its sweeps, in the order written: ``rag-bm25(k=1..4)`` →
    ``rag-bm25(k=1)``, ``rag-bm25(k=2)``, ``rag-bm25(k=4)``."""
    match = _SWEEP.search(item)
    if match is None:
        return [item]
    name, values = match.group(1), _sweep_values(match.group(2), f"method {item}")
    head, tail = item[: match.start()], item[match.end() :]
    return [spec for value in values for spec in expand_sweeps(f"{head}{name}={value}{tail}")]


def parse_methods(text: str) -> list[Method]:
    methods = [make_method(spec) for item in split_list(text) for spec in expand_sweeps(item)]
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

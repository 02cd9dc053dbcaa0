"""kvpress itself, imported on first use, and its presses by name: lookup, press specs and construction.

kvpress is imported lazily (its import takes seconds and patches every attention function of transformers), so
listing the methods or starting the CLI never pays for it.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterator
from typing import Any

from longscope.core import UsageError

# Names a user may write for a press besides its class name (lower case, no dashes, no "press" suffix).
ALIASES = {"chunked": "ChunkPress", "h2o": "ObservedAttentionPress"}

# Presses that cannot run in a shared-context session, and why.
REFUSED: dict[str, str] = {}

# Presses that select with the question inside the prefill: they run only query-aware (query_aware=true).
NEEDS_QUESTION = {
    "FinchPress": "it sizes its window to the question, which must be prefilled and compressed with the context",
}

# Presses that compress while the answer is decoded: a question in the prefill is not what they select with,
# so a query-aware setting on them is refused rather than silently meaning nothing.
DECODING_ONLY = ("DecodingPress", "CAMPress", "CompressionRatioDecodingPress")

# Presses whose compression is set by their own arguments, not by one fraction of the context's entries.
NO_RATIO = {
    "ThinKPress": "it zeroes key channels, not entries: set key_channel_compression_ratio=...",
    "SimLayerKVPress": "it compresses the layers it finds lazy: set lazy_threshold=... and n_recent=...",
    "DuoAttentionPress": "it turns whole heads into streaming heads: set head_compression_ratio=...",
    "PerLayerCompressionPress": "it takes one ratio per layer: set compression_ratios=0.2+0.5+...",
    "DMSPress": "it evicts entries whose score falls below threshold=...",
    "ComposedPress": "its presses carry their own ratios: presses=SnapKVPress(compression_ratio=0.3)+...",
    "DecodingPress": "it compresses while the answer is decoded, down to target_size=...",
    "CAMPress": "it compresses while the answer is decoded, down to target_size=...",
    "CompressionRatioDecodingPress": "it compresses while decoding, to target_compression_ratio=...",
    "PrefillDecodingPress": "its prefilling_press and decoding_press carry their own settings",
}

# Arguments that hold another press, written as a press spec: press=SnapKVPress(window_size=32).
PRESS_ARGS = ("press", "base_press", "prefilling_press", "decoding_press")
# Wrappers whose kvpress code cannot use attention weights (they assert so, or mask through the attention patch
# that eager attention bypasses): ObservedAttentionPress inside them would fail mid-run.
NO_ATTENTION_WEIGHTS = ("AdaKVPress", "CriticalAdaKVPress", "ChunkPress", "BlockPress", "ChunkKVPress")

_PRESS_SPEC = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*(?:\((.*)\))?\s*(?::\s*(.*?))?\s*$")


@functools.cache
def kvpress() -> Any:
    """The kvpress package. Importing it wraps every attention function registered in transformers so that
    head-wise masks (``module.masked_key_indices``) take effect; the wrapper changes nothing for a module
    without masks, and this module installs masks only while a press method attends."""
    import kvpress as package

    return package


@functools.cache
def press_classes() -> dict[str, type]:
    """Every press kvpress exports, by class name (its two abstract bases left out)."""
    package = kvpress()
    base = package.BasePress
    found = {}
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type) and issubclass(value, base) and name not in ("BasePress", "ScorerPress"):
            found[name] = value
    return found


def _normal(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    return key[: -len("press")] if key.endswith("press") and len(key) > len("press") else key


def press_class_name(text: str) -> str:
    """The kvpress class a name stands for: ``SnapKVPress``, ``snapkv``, ``streaming-llm``, ``chunked``."""
    classes = press_classes()
    if text in classes:
        name = text
    else:
        wanted = ALIASES.get(_normal(text), text)
        matches = [n for n in classes if n == wanted or _normal(n) == _normal(wanted)]
        if not matches:
            raise UsageError(f"unknown kvpress press {text!r}; presses: {', '.join(sorted(classes))}")
        name = matches[0]
    if name in REFUSED:
        raise UsageError(f"kvpress:{name} cannot run here: {REFUSED[name]}")
    return name


def press_arguments(name: str) -> list[str]:
    """The arguments a press takes (its constructor's, i.e. its dataclass fields), private ones left out."""
    signature = inspect.signature(press_classes()[name])
    return [p for p in signature.parameters if not p.startswith("_")]


def takes_ratio(name: str) -> bool:
    """True for presses that remove a fraction of the context's entries set by ``compression_ratio`` (their
    own field, or a wrapped press's through a property)."""
    if name in NO_RATIO:
        return False
    params = inspect.signature(press_classes()[name]).parameters
    return "compression_ratio" in params or "press" in params


def split_top(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside parentheses."""
    items, depth, current = [], 0, ""
    for char in text:
        if char == separator and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def split_press(text: str, where: str) -> tuple[str, dict[str, Any], str | None]:
    """``SnapKVPress(window_size=32):0.5`` → (class name, arguments unchecked, the text after the colon)."""
    from longscope.spec import parse_params

    match = _PRESS_SPEC.match(text)
    if not match:
        raise UsageError(
            f"{where}: cannot read press {text!r}; write PressName, PressName(arg=value,...) "
            "and for the method itself :RATIO or :budget=N after it"
        )
    name = press_class_name(match.group(1))
    return name, parse_params(match.group(2) or "", f"{where}:{name}"), match.group(3)


def parse_press(text: str, where: str = "kvpress") -> tuple[str, dict[str, Any]]:
    """A press spec with arguments the press takes (an inner press, or a wrapper's ``press=``)."""
    name, args, after = split_press(text, where)
    if after:
        raise UsageError(f"{where}: an inner press takes no :{after}; set its compression_ratio=... inside")
    check_arguments(name, args, f"{where}:{name}")
    return name, args


def check_arguments(name: str, args: dict[str, Any], where: str) -> None:
    accepted = press_arguments(name)
    for arg in args:
        if arg not in accepted:
            listed = ", ".join(sorted(accepted)) or "none"
            raise UsageError(f"{where}: unknown argument {arg!r}; {name} takes: {listed}")


def instantiate(name: str, args: dict[str, Any]) -> Any:
    """Build the kvpress press, nested presses included; its own checks become a UsageError."""
    kwargs = {}
    for arg, value in args.items():
        if arg in PRESS_ARGS and isinstance(value, str):
            value = instantiate(*parse_press(value, f"kvpress:{name}({arg})"))
        elif arg == "presses":
            value = [
                instantiate(*parse_press(item, "kvpress:ComposedPress"))
                for item in split_top(str(value), "+")
            ]
        elif arg == "compression_ratios":
            value = [float(item) for item in split_top(str(value), "+")]
        kwargs[arg] = value
    try:
        return press_classes()[name](**kwargs)
    except (AssertionError, TypeError, ValueError) as exc:
        raise UsageError(f"kvpress:{name} refused its arguments: {exc or type(exc).__name__}") from None


def walk(press: Any) -> Iterator[Any]:
    """The press and every press inside it."""
    yield press
    for arg in PRESS_ARGS:
        inner = getattr(press, arg, None)
        if inner is not None and hasattr(inner, "forward_hook"):
            yield from walk(inner)
    for inner in getattr(press, "presses", None) or ():
        yield from walk(inner)


def check_tree(press: Any) -> None:
    observed = press_classes()["ObservedAttentionPress"]
    for outer in walk(press):
        if type(outer).__name__ in NO_ATTENTION_WEIGHTS and any(
            isinstance(inner, observed) for inner in walk(outer)
        ):
            raise UsageError(
                f"kvpress:{type(outer).__name__} cannot wrap ObservedAttentionPress: it needs eager attention "
                "weights, which this wrapper cannot use; wrap a press that scores without them (snapkv)"
            )


def press_catalogue() -> list[tuple[str, list[tuple[str, Any]], str]]:
    """Every installed press: its class name, its arguments with their defaults ("(required)" where it has
    none), and how it runs here (its amount, or why it needs query_aware)."""
    import dataclasses

    rows = []
    for name, cls in sorted(press_classes().items()):
        args = []
        for param in inspect.signature(cls).parameters.values():
            if param.name.startswith("_"):
                continue
            default = "(required)" if param.default is inspect.Parameter.empty else param.default
            if dataclasses.is_dataclass(default):
                default = type(default).__name__
            args.append((param.name, default))
        if name in REFUSED:
            how = f"cannot run here: {REFUSED[name]}"
        elif name in NEEDS_QUESTION:
            how = "query-aware only: add query_aware=true"
        elif name in NO_RATIO:
            how = f"no ratio: {NO_RATIO[name].split(': ', 1)[-1]}"
        else:
            how = ":RATIO or :budget=N"
        rows.append((name, args, how))
    return rows

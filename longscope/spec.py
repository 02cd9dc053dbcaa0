"""The command-line grammar, in one place: ``NAME(k=v,...)``, ``:ratio`` / ``:budget=N``, lists and lengths."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from longscope.core import UsageError

_LENGTH = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")
# A task: NAME[:SUBSET][(k=v,...)]. A method: NAME[(k=v,...)][:AMOUNT]. One grammar, two places for the colon.
_TASK = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?::([A-Za-z0-9_.-]+))?\s*(?:\((.*)\))?\s*$", re.S)
_METHOD = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\((.*)\))?\s*(?::\s*(.*?))?\s*$", re.S)


def split_list(text: str) -> list[str]:
    """Split ``a,b(x=1,y=2),c`` at the commas outside parentheses."""
    items, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise UsageError(f"unbalanced parentheses in {text!r}")
        current += char
    if depth:
        raise UsageError(f"unbalanced parentheses in {text!r}")
    items.append(current)
    return [item.strip() for item in items if item.strip()]


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


def parse_params(text: str, where: str, *, typed: bool = True) -> dict[str, Any]:
    """``a=1,b=x`` → {"a": 1, "b": "x"}; with ``typed`` False the values stay strings (pydantic types them)."""
    params: dict[str, Any] = {}
    for pair in split_list(text):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{where}: parameter {pair!r} needs the form name=value")
        params[name.strip()] = parse_value(value) if typed else value.strip()
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


@dataclass(frozen=True)
class Spec:
    """One parsed ``NAME[:SUBSET][(k=v,...)][:AMOUNT]``: a task, a method or a published benchmark subset."""

    name: str
    subset: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    amount: str = ""  # what follows the closing colon, unparsed: a method's ratio or budget

    def __str__(self) -> str:
        return format_spec(self.name, self.params, subset=self.subset, amount=self.amount)


def parse_spec(text: str, family: str, *, typed: bool = True) -> Spec:
    """``snapkv(window=64):0.5``, ``longbench:hotpotqa(limit=5)`` or ``niah`` as a Spec; one line when it
    cannot be read."""
    method = family == "method"
    match = (_METHOD if method else _TASK).match(text)
    if not match or not text.strip():
        raise UsageError(
            f"cannot read {family} {text!r}; write NAME, NAME(param=value,...)"
            + (", NAME:RATIO or NAME:budget=N" if method else "")
        )
    if method:
        (name, args, amount), subset = match.groups(), ""
    else:
        (name, subset, args), amount = match.groups(), ""
    params = parse_params(args or "", f"{family} {name}", typed=typed)
    return Spec(name=name, subset=subset or "", params=params, amount=(amount or "").strip())


def format_value(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def format_spec(name: str, params: dict[str, Any], *, subset: str = "", amount: str = "") -> str:
    """The inverse of ``parse_spec``: ``name[:subset](k=v,...)[:amount]``, parameters in the order given."""
    text = name + (f":{subset}" if subset else "")
    if params:
        text += "(" + ",".join(f"{k}={format_value(v)}" for k, v in params.items()) + ")"
    return text + (f":{amount}" if amount else "")


def parse_lengths(text: str) -> list[int]:
    """``1k,2k,4k`` → [1024, 2048, 4096]; k and m are binary multiples, as in RULER's length grid."""
    lengths = []
    for item in split_list(text):
        match = _LENGTH.match(item)
        if not match:
            raise UsageError(f"cannot read length {item!r}; write numbers of tokens like 1000, 4k or 1.5k")
        scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
        value = float(match.group(1)) * scale
        if value != int(value) or value < 1:
            raise UsageError(f"length {item!r} is not a whole, positive number of tokens")
        lengths.append(int(value))
    if not lengths:
        raise UsageError("no lengths given; write for example --lengths 1k,2k,4k")
    return sorted(set(lengths))


def format_length(tokens: int | None) -> str:
    """The inverse of ``parse_lengths`` for one length: 4096 → ``4k``, 1536 → ``1.5k``, 1000 → ``1000``."""
    if tokens is None:
        return "—"
    if tokens % 1024 == 0:
        return f"{tokens // 1024}k"
    if tokens % 512 == 0:
        return f"{tokens / 1024:g}k"
    return str(tokens)


def parse_depths(text: str) -> list[float]:
    depths = []
    for item in split_list(text):
        try:
            value = float(item)
        except ValueError:
            raise UsageError(
                f"cannot read depth {item!r}; write fractions between 0 and 1, like 0,0.5,1"
            ) from None
        if not 0.0 <= value <= 1.0:
            raise UsageError(
                f"depth {value:g} is outside [0, 1]; 0 is the start of the context and 1 its end"
            )
        depths.append(value)
    if not depths:
        raise UsageError("no depths given; write for example --depths 0,0.5,1")
    return sorted(set(depths))

"""Tasks by name, and the ``name(param=value,...)`` syntax the command line uses to configure them."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re

from longscope.core import Registry, UsageError, configure
from longscope.tasks.base import Task, cached_sample

TASKS: Registry[type[Task]] = Registry("task")


def _discover() -> None:
    """Register every Task subclass with a name, from every module of this package: one file per family,
    and adding a family is adding a file."""
    for module in pkgutil.iter_modules(__path__):
        if module.name in ("base", "vocabulary") or module.name.startswith("_"):
            continue
        _register_from(importlib.import_module(f"{__name__}.{module.name}"))
    # Published benchmarks: one loader per file under tasks/benchmarks/.
    from longscope.tasks import benchmarks

    for module in pkgutil.iter_modules(benchmarks.__path__):
        if module.name != "base" and not module.name.startswith("_"):
            _register_from(importlib.import_module(f"{benchmarks.__name__}.{module.name}"))


def _register_from(loaded: object) -> None:
    for value in vars(loaded).values():
        if (
            isinstance(value, type)
            and issubclass(value, Task)
            and value.name
            and value.__module__ == loaded.__name__
        ):
            TASKS.add(value.name, value)


_discover()

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.:-]+)\s*(?:\((.*)\))?\s*$")


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


def make_task(spec: str) -> Task:
    """``niah_multikey(num_keys=6,key_type=uuid)`` → a configured task; parameters are type-checked."""
    match = _SPEC.match(spec)
    if not match:
        raise UsageError(f"cannot read task {spec!r}; write NAME or NAME(param=value,...)")
    name, _, subset = match.group(1).partition(":")
    cls = TASKS.get(name)
    params: dict[str, str] = {}
    if subset:  # a published benchmark's subset: longbench:hotpotqa
        if "subset" not in {f.name for f in dataclasses.fields(cls)}:
            raise UsageError(f"task {name} has no subsets; write it as {name} or {name}(param=value,...)")
        params["subset"] = subset
    for pair in split_list(match.group(2) or ""):
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"task {cls.name}: parameter {pair!r} needs the form name=value")
        params[name.strip()] = value.strip()
    return configure(cls, params, "task")


__all__ = ["TASKS", "Task", "cached_sample", "make_task", "split_list"]

"""Tasks by name, and the ``name(param=value,...)`` syntax the command line uses to configure them."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

from longscope.core import Registry, UsageError, configure
from longscope.scoring import SCORERS
from longscope.spec import parse_spec, split_list
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
            _check_metrics(value)
            TASKS.add(value.name, value)


def task_metrics(cls: type[Task]) -> set[str]:
    """Every scorer name a task class may score with: its ``metric``; for a loader whose metric follows the
    subset, that of each subset it declares, of all subsets read at once, and those of ``subset_metrics``."""
    declared = inspect.getattr_static(cls, "metric")
    if isinstance(declared, str):
        return {declared}
    tasks = [cls(), *(cls(subset=subset) for subset in getattr(cls, "subsets", ()))]
    return {task.metric for task in tasks} | set(getattr(cls, "subset_metrics", {}).values())


def _check_metrics(cls: type[Task]) -> None:
    # Scorers are looked up by name only when the first answer is scored; a misspelt name would otherwise
    # surface after a whole run's generation time.
    unknown = sorted(task_metrics(cls) - set(SCORERS))
    if unknown:
        raise ValueError(
            f"task {cls.name} scores with {unknown[0]!r}, which is no registered scorer; "
            f"scorers: {', '.join(SCORERS)}"
        )


_discover()


def make_task(spec: str) -> Task:
    """``niah_multikey(num_keys=6,key_type=uuid)`` → a configured task; parameters are type-checked."""
    parsed = parse_spec(spec, "task", typed=False)
    cls = TASKS.get(parsed.name)
    params: dict[str, str] = {}
    if parsed.subset:  # a published benchmark's subset: longbench:hotpotqa
        if "subset" not in {f.name for f in dataclasses.fields(cls)}:
            raise UsageError(
                f"task {parsed.name} has no subsets; write it as {parsed.name} or {parsed.name}(param=value,...)"
            )
        params["subset"] = parsed.subset
    params.update(parsed.params)
    task = configure(cls, params, "task")
    budget = getattr(task, "max_new_tokens", None)
    if budget is not None and budget < 1:  # known before any model loads
        raise UsageError(f"{task.label()}: max_new_tokens must be at least 1 (got {budget})")
    return task


__all__ = ["TASKS", "Task", "cached_sample", "make_task", "split_list", "task_metrics"]

"""What `longscope tasks` and `longscope methods` print, as plain text that fits a given width.

A line per name by default, so that a normal 80-column terminal reads the whole catalogue at a glance; one
name (or every name with --verbose) in full, with each parameter and its default. Everything here takes the
registries' (name, class) pairs and a width and returns text: the command only prints it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import shutil
import textwrap
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from longscope.core import UsageError

ELLIPSIS = "…"
# Below this the columns cannot hold a name and a word of description; print as if this wide and let the
# terminal wrap rather than show nothing useful.
NARROWEST = 40
GAP = "  "


def terminal_width(default: int = 80) -> int:
    """The width to lay the listing out for: $COLUMNS, else the terminal's, else 80 (a pipe or a file)."""
    return max(NARROWEST, shutil.get_terminal_size((default, 24)).columns)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when it is longer (``text`` is one line)."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)].rstrip() + ELLIPSIS if width > 0 else ""


def _flat(text: str) -> str:
    return " ".join(text.split())


def wrap(text: str, width: int, indent: str = "", hang: str | None = None) -> list[str]:
    """``text`` wrapped to ``width``, first line after ``indent`` and the rest after ``hang`` (default the same)."""
    return textwrap.wrap(
        " ".join(text.split()),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _rows(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, right: set[int]) -> list[str]:
    """Columns sized to their widest cell; the last one takes what is left and is clipped to it."""
    fixed = len(headers) - 1
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(fixed)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i]) for i in range(fixed)]
        head = GAP.join(cells) + GAP
        lines.append(clip(head + row[-1], width) if len(head) < width else clip(head, width))
    return lines


# -- tasks ----------------------------------------------------------------------------------------------------


def tasks_compact(tasks: Iterable[tuple[str, type]], width: int) -> str:
    """One line per task: name, diffusion, scope, metric and the start of its description."""
    rows = []
    for name, cls in tasks:
        task = cls()
        # The metric leads the last column rather than taking one of its own: metric names run to 20
        # characters, and an aligned column that wide would leave a description a dozen at 80 columns.
        about = f"{task.metric} · {_flat(task.description)}"
        rows.append([name, f"{task.diffusion:.2f}", f"{task.scope:.2f}", about])
    lines = _rows(["task", "diffusion", "scope", "metric · what it asks"], rows, width, right={1, 2})
    lines.append("")
    lines += wrap(
        "Configure a task as NAME(param=value,...), e.g. --tasks 'niah(haystack=noise,value_type=uuid)'. "
        "`longscope tasks NAME` shows one task's parameters, --verbose every task's, and --plane places "
        "them on the difficulty plane (diffusion: how hard the needed facts are to find; scope: how much "
        "of the context is needed).",
        width,
    )
    return "\n".join(lines)


def task_detail(name: str, cls: type, width: int) -> str:
    """One task in full: what it asks, its metric, its place on the plane and every parameter's default."""
    task = cls()
    lines = _title(name, task.description, width) + _docstring(cls, width)
    lines += _facts(
        [
            ("metric", task.metric),
            ("plane", f"diffusion {task.diffusion:.2f}, scope {task.scope:.2f} (with the defaults below)"),
            ("lengths", _task_kind(cls)),
        ],
        width,
    )
    lines += _parameters(cls, [(f.name, getattr(task, f.name)) for f in dataclasses.fields(task)], width)
    departures = tuple(getattr(cls, "departures", ()) or ())
    if departures:
        lines += ["", "Against the benchmark's official code (quirks kept, and where it departs):"]
        for departure in departures:
            lines += wrap(departure, width, indent="  - ", hang="    ")
    return "\n".join(lines)


def _task_kind(cls: type) -> str:
    if getattr(cls, "published", False):
        return "records of a published benchmark (--data), each as long as it is"
    depth = ", needle at each of the run's --depths" if getattr(cls, "uses_depth", False) else ""
    return f"built at each of the run's --lengths exactly{depth}"


def tasks_verbose(tasks: Iterable[tuple[str, type]], width: int) -> str:
    return "\n\n".join(task_detail(name, cls, width) for name, cls in tasks)


# -- methods --------------------------------------------------------------------------------------------------


def _runs_on(cls: type) -> str:
    return "in-process" if getattr(cls, "in_model", False) else "any backend"


def methods_compact(methods: Iterable[tuple[str, type]], width: int) -> str:
    """One line per method: name, where it runs and the start of its description."""
    rows = [[name, _runs_on(cls), _flat(cls.description)] for name, cls in methods]
    lines = _rows(["method", "runs on", "what it does"], rows, width, right=set())
    lines.append("")
    lines += wrap(
        "In-process methods change the model's attention or KV cache and need smollm2 or hf:PATH; the others "
        "change what is sent and work with every backend. Write NAME:RATIO (the fraction of the context's KV "
        "entries dropped, in [0, 1)) or NAME:budget=N (entries kept), e.g. --methods "
        "full,snapkv:0.5,snapkv:budget=1024; any kvpress press as kvpress:PressName(arg=value):0.5. "
        "`longscope methods NAME` shows one method's parameters, --verbose every method's.",
        width,
    )
    return "\n".join(lines)


def method_detail(name: str, cls: type, width: int) -> str:
    """One method in full: what it does, where it runs, and every parameter with its default."""
    lines = _title(name, cls.description, width) + _docstring(cls, width)
    in_model = getattr(cls, "in_model", False)
    runs_on = "in-process models only (smollm2, hf:PATH): it changes attention or the KV cache"
    facts = [("runs on", runs_on if in_model else "every backend")]
    if getattr(cls, "extends_window", False):
        facts.append(("window", "lets the model read past its trained context window"))
    if _takes_amount(cls):
        unit = "KV entries (per layer and KV head)" if in_model else "tokens"
        facts.append(
            ("amount", f"{name}:RATIO drops that fraction of the context's {unit}; {name}:budget=N keeps N")
        )
    lines += _facts(facts, width)
    params = [(f.name, _default(f)) for f in dataclasses.fields(cls)]
    lines += _parameters(cls, params, width)
    return "\n".join(lines)


def _takes_amount(cls: type) -> bool:
    """Whether the method accepts a ratio at all (``full`` refuses one): asked of the class itself, so the
    listing cannot drift from what the command line accepts."""
    try:
        cls()
    except (UsageError, TypeError, ValueError):
        return True  # needs parameters of its own (kvpress: a press name): no way to tell, and most take one
    try:
        cls(ratio=0.5)
    except (UsageError, TypeError, ValueError):
        return False
    return True


def methods_verbose(methods: Iterable[tuple[str, type]], width: int) -> str:
    return "\n\n".join(method_detail(name, cls, width) for name, cls in methods)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return "(required)"


# -- shared pieces --------------------------------------------------------------------------------------------


def _title(name: str, description: str, width: int) -> list[str]:
    return wrap(f"{name} — {description}", width, hang="  ") if description else [name]


def _docstring(cls: type, width: int) -> list[str]:
    """The class's own docstring, reflowed, then a blank line before the facts that follow it. Dataclasses
    make up a signature as the docstring of a class that has none: that one says nothing new."""
    lines: list[str] = [""]
    doc = _own_doc(cls)
    if doc:
        for paragraph in inspect.cleandoc(doc).replace("``", "`").split("\n\n"):
            lines += [*wrap(paragraph, width, indent="  "), ""]
    return lines


def _own_doc(cls: type) -> str:
    """The docstring of ``cls`` or of the nearest family member it extends (the db_* tasks share one), but
    not the family's base class: what every task or method is says nothing about this one."""
    for klass in cls.__mro__:
        if klass.__module__.endswith(".base") or klass is object:
            return ""
        doc = vars(klass).get("__doc__") or ""
        if doc and not doc.startswith(f"{klass.__name__}("):
            return doc
    return ""


def _facts(facts: list[tuple[str, str]], width: int) -> list[str]:
    label = max(len(key) for key, _ in facts) + len(GAP)
    lines: list[str] = []
    for key, value in facts:
        lines += wrap(value, width, indent=key.ljust(label), hang=" " * label)
    return lines


def _parameters(cls: type, params: list[tuple[str, Any]], width: int) -> list[str]:
    if not params:
        return ["parameters: none"]
    hints = _type_hints(cls)
    name_width = max(len(name) for name, _ in params)
    # One long default (a tuple of presses) should not push every other row's type to the right edge.
    value_width = min(24, max(len(_show(value)) for _, value in params))
    lines = ["parameters (default, accepted values):"]
    for name, value in params:
        head = f"  {name.ljust(name_width)}  {_show(value).ljust(value_width)}  "
        kind = _describe_type(hints.get(name))
        if len(head) > width - 12:  # no room left beside it: the default alone, the type on the next line
            lines.append(clip(_flat(f"  {name}  {_show(value)}"), width))
            if kind:
                lines += wrap(kind, width, indent=" " * (name_width + 4))
        else:
            lines += wrap(kind, width, indent=head, hang=" " * len(head)) if kind else [head.rstrip()]
    return lines


def _show(value: Any) -> str:
    if value == "":
        return '""'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return ",".join(_show(v) for v in value) or "()"
    return str(value)


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: the listing shows no types
        return {}


def _describe_type(hint: Any) -> str:
    """``Literal["a", "b"]`` → ``a | b``; ``int | None`` → ``int or None``; an unknown hint → nothing."""
    if hint is None:
        return ""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " | ".join(str(v) for v in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(arg) or "?" for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def lookup(items: Iterable[tuple[str, type]], name: str, family: str) -> type:
    """The member called ``name``, or a one-line UsageError naming the closest ones."""
    known = dict(items)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.6)
    close += [k for k in known if name.lower() in k.lower() and k not in close][: 5 - len(close)]
    hint = f"did you mean {', '.join(close)}?" if close else f"`longscope {family}s` lists all {len(known)}"
    raise UsageError(f"unknown {family} {name!r}; {hint}")


# -- the difficulty plane -------------------------------------------------------------------------------------


def plane_text(points: dict[str, tuple[float, float]], width: int, bins: int = 5) -> str:
    """The tasks on the difficulty plane: a grid (diffusion up, scope across) when it fits in ``width``,
    else the same cells as a list, one row of the grid after the other, so nothing is folded mid-name."""
    edges = [i / bins for i in range(bins + 1)]

    def bucket(value: float) -> int:
        return min(bins - 1, max(0, int(value * bins)))

    cells: dict[tuple[int, int], list[str]] = {}
    for name, (diffusion, scope) in points.items():
        cells.setdefault((bucket(diffusion), bucket(scope)), []).append(name)
    span = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(bins)]
    title = "difficulty plane: diffusion (how hard the needed facts are to find) × scope (how much is needed)"
    grid = _grid(cells, span, bins, title)
    if max(len(line) for line in grid.splitlines()) <= width:
        return grid
    lines = wrap(
        "The difficulty plane, most diffuse first. Diffusion: how hard the needed facts are to find; scope: how "
        "much of the context is needed.",
        width,
    )
    for row in reversed(range(bins)):
        filled = [(col, sorted(cells[row, col])) for col in range(bins) if (row, col) in cells]
        if not filled:
            continue
        lines += ["", f"diffusion {span[row]}"]
        for col, names in filled:
            head = f"  scope {span[col]}  "
            lines += wrap(", ".join(names), width, indent=head, hang=" " * len(head))
    return "\n".join(lines)


def _grid(cells: dict[tuple[int, int], list[str]], span: list[str], bins: int, title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=True)
    table.add_column("diffusion \\ scope", justify="right", no_wrap=True)
    for label in span:
        table.add_column(label, no_wrap=True)
    for row in reversed(range(bins)):
        table.add_row(span[row], *["\n".join(sorted(cells.get((row, col), []))) for col in range(bins)])
    # Rendered at its natural width: whether that fits is the caller's decision, not rich's folding.
    console = Console(file=io.StringIO(), width=10_000, record=True, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def kvpress_presses(catalogue: Sequence[tuple[str, Sequence[tuple[str, Any]], str]], width: int) -> str:
    """Every installed kvpress press with its arguments and defaults, as written after ``kvpress:``."""
    lines = wrap(f"kvpress presses installed ({len(catalogue)}); write kvpress:PressName(arg=value,...):RATIO, "
                 "a press argument as a press spec (press=SnapKVPress(window_size=32)):", width)  # fmt: skip
    for name, args, how in catalogue:
        lines.append("")
        lines += wrap(f"{name} — {how}", width, hang="  ")
        shown = ", ".join(f"{arg}={_show(default)}" for arg, default in args) or "no arguments"
        lines += wrap(shown, width, indent="  ")
    return "\n".join(lines)


def leaderboard_names(aliases: dict[str, tuple[str, dict[str, Any]]], width: int) -> str:
    """kvpress's leaderboard names and the press each stands for."""
    lines = wrap("kvpress leaderboard names; write leaderboard:NAME:RATIO, or leaderboard:NAME(query_aware=true)"
                 ":RATIO for its query-aware rows:", width)  # fmt: skip
    lines.append("")
    for alias, (press, args) in sorted(aliases.items()):
        inside = ",".join(f"{k}={v}" for k, v in args.items())
        lines += wrap(f"{alias} — {press}({inside})" if inside else f"{alias} — {press}", width, hang="    ")
    return "\n".join(lines)

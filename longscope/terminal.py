"""How a run's scores read in a terminal: per-method tables whose every number carries its n and interval,
the effective lengths by their published rules, and paired differences between methods."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longscope.analysis.breakdown import Breakdown
from longscope.analysis.effective_length import DEFAULT_SHARE
from longscope.analysis.intervals import Interval
from longscope.analysis.scores import ScoreTable, Summary
from longscope.spec import format_length

INTERVALS = (
    "95% intervals: Wilson for pass/fail scores at every n; for graded scores a bootstrap from n=10 (by "
    "context where questions share one); the mean over tasks a bootstrap stratified by task, once every task "
    "has n=10."
)


def _interval(interval: Interval, notes: list[str]) -> str:
    if interval.available:
        return f"[{interval.low:.1f}, {interval.high:.1f}]"
    if interval.reason not in notes:
        notes.append(interval.reason)
    return f"no CI{_mark(notes.index(interval.reason))}"


def _mark(index: int) -> str:
    return "*" * (index + 1)


def _method_table(table_data: ScoreTable, title: str, notes: list[str]) -> Table:
    table = Table(title=title)
    table.add_column("task")
    for length in table_data.lengths:
        table.add_column(format_length(length), justify="right")
    table.add_column("effective", justify="right")
    for task in table_data.tasks:
        row = [escape(task)]
        for length in table_data.lengths:
            cell = table_data.cells.get((task, length))
            if cell is None:
                row.append("")
                continue
            mean = "—" if cell.mean is None else f"{cell.mean:.1f}"
            failed = f" [red]{cell.failed} failed[/]" if cell.failed else ""
            row.append(f"{mean} n={cell.n}{failed}\n{_interval(cell.interval, notes)}")
        row.append(table_data.effective_label(task))
        table.add_row(*row)
    overall = []
    for length in table_data.lengths:
        cell = table_data.overall[length]
        mean = "—" if cell.mean is None else f"{cell.mean:.1f}"
        overall.append(f"[bold]{mean}[/] n={cell.n}\n{_interval(cell.interval, notes)}")
    table.add_row("[bold]mean over tasks[/]", *overall, f"[bold]{table_data.effective_label()}[/]")
    return table


def print_summary(out: Console, summary: Summary, run_dir: Path, threshold: float) -> None:
    """One table per method, each with its own mean over tasks and effective length (methods are never pooled
    into one cell), then each method against the reference on the samples both scored."""
    if summary.empty:
        out.print(f"{escape(str(run_dir))}: no results yet")
        return
    notes: list[str] = []
    for method, table_data in summary.tables.items():
        title = f"score (0-100) by task and length — {run_dir}"
        if len(summary.tables) > 1 or method != "full":
            title += f" — method {method}"
        out.print(_method_table(table_data, escape(title), notes))
        of = "" if method == "full" else f" of {method}"
        lines = [
            f"Effective context length{of}: {table_data.effective_label()} (RULER's rule: the longest tested length "
            f"whose mean over tasks exceeds {threshold:g}; '>' the longest tested passes, '<' none does).",
        ]
        relative = table_data.relative_effective_length()
        shortest = format_length(table_data.lengths[0]) if table_data.lengths else "—"
        lines.append(
            f"Relative effective length{of}: "
            + (format_length(relative) if relative else "none (no score at the shortest length)")
            + f" (NoLiMa's rule: the longest length keeping {DEFAULT_SHARE:.0%} of the score at {shortest})."
        )
        auc = table_data.auc()
        if auc is not None:
            band = table_data.auc_interval()
            lines.append(
                f"Area under the score-length curve{of}: {auc:.1f} {_interval(band, notes)} "
                "(mean height over log2 length, 0-100)."
            )
        for line in lines:
            out.print(escape(line), highlight=False)
    if summary.differences:
        out.print("[bold]Paired against full on the same samples[/] (other − full, points):")
        for difference in summary.differences:
            where = "all lengths" if difference.length is None else format_length(difference.length)
            out.print(f"  {where}: {escape(difference.sentence())}", highlight=False)
    out.print(escape(INTERVALS), highlight=False)
    for index, note in enumerate(notes):
        out.print(f"{_mark(index)} no CI: {escape(note)}", highlight=False)
    if summary.failed:
        out.print(f"[red]{summary.failed} samples failed[/]; run the same command again to retry them.")
    if summary.truncated or summary.skipped:
        out.print(
            f"{summary.truncated} samples were truncated to fit the model window and {summary.skipped} skipped "
            "(`longscope show` and results.csv give each one's reason)."
        )


def print_breakdown(out: Console, table_data: Breakdown, run_dir: Path) -> None:
    if not table_data.cells:
        out.print(
            f"{escape(str(run_dir))}: nothing to break down by {table_data.by!r}; no sample carries that key"
        )
        return
    what = table_data.metric or "score"
    notes: list[str] = []
    table = Table(title=escape(f"{what} (0-100) by task and {table_data.by or 'length'} — {run_dir}"))
    table.add_column("task")
    for value in table_data.values:
        table.add_column(escape(str(value)), justify="right")
    for task in table_data.tasks:
        row = [escape(task)]
        for value in table_data.values:
            cell = table_data.cells.get((task, value))
            if cell is None or cell.mean is None:
                row.append("")
                continue
            row.append(f"{cell.mean:.1f} n={cell.n}\n{_interval(cell.bound().interval, notes)}")
        table.add_row(*row)
    out.print(table)
    for index, note in enumerate(notes):
        out.print(f"{_mark(index)} no CI: {escape(note)}", highlight=False)


def print_score_by(out: Console, breakdowns: list[Breakdown], run_dir: Path) -> None:
    """The "score by" tables of the harder reading families (overlap, level, rounds, operations) a run carries;
    nothing when it carries none."""
    for table_data in breakdowns:
        if table_data.cells:
            print_breakdown(out, table_data, run_dir)


def print_judge_comparisons(out: Console, sentences: list[str]) -> None:
    """Each regrading judge against the run's first judge on the same outputs."""
    for sentence in sentences:
        out.print(f"Judges compared: {escape(sentence)}", highlight=False)

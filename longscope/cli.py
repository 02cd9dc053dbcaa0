"""The ``longscope`` command: run a plan, list tasks, show a run's summary again."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.analysis.summary import Breakdown, Summary, breakdown, summarise
from longscope.core import UsageError
from longscope.runner import RunConfig, parse_depths, parse_lengths
from longscope.store import RunStore
from longscope.suites import load_suite
from longscope.tasks import TASKS, split_list

DEFAULT_SUITE = "quick"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="How far does a language model really read, and what does that cost?",
    pretty_exceptions_enable=False,
)
out = Console()


def fmt_length(tokens: int) -> str:
    if tokens % 1024 == 0:
        return f"{tokens // 1024}k"
    if tokens % 512 == 0:
        return f"{tokens / 1024:g}k"
    return str(tokens)


def _default_out(model: str) -> Path:
    # openai:URL#MODEL?options names the model after the '#'; other URIs by their last path component.
    name = model.split("#", 1)[1].split("?", 1)[0] if "#" in model else model
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.split("/")[-1].split(":")[-1])
    return Path("runs") / (slug.strip("-.") or "model")


@app.command()
def run(
    model: str = typer.Option(
        "smollm2", help="smollm2 (bundled), hf:PATH_OR_ID, gguf:PATH or openai:BASE_URL#MODEL[?options]"
    ),
    suite: str = typer.Option(
        DEFAULT_SUITE, help="a built-in suite (quick, niah, ruler-like, plane) or a .toml/.yaml suite file"
    ),
    tasks: str | None = typer.Option(
        None, help="comma-separated tasks, NAME(param=value,...); replaces the suite's tasks"
    ),
    lengths: str | None = typer.Option(
        None, help="whole-request lengths, e.g. 1k,2k,4k (default: the suite's)"
    ),
    depths: str | None = typer.Option(None, help="needle depths in [0, 1] (default: the suite's)"),
    samples: int | None = typer.Option(None, help="samples (seeds) per task, length and depth"),
    seed: int = typer.Option(0, help="first seed"),
    retries: int = typer.Option(1, help="retries of a failed sample before it is recorded as failed"),
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD, help="score (0-100) that a length must clear to count"
    ),
    truncation: str | None = typer.Option(
        None,
        help="for samples longer than the model window: middle, left, right or skip "
        "(default: a benchmark's own rule, middle otherwise)",
    ),
    methods: str = typer.Option(
        "full",
        help="long-context methods to compare, e.g. full,snapkv:0.5,squeezed:budget=1024 (`longscope methods`)",
    ),
    mode: str = typer.Option(
        "independent",
        help="how a sample's questions share its context: independent (each re-reads it), multi-request "
        "(prefilled once, the cache restored after each answer) or multi-turn (one conversation)",
    ),
    data: str | None = typer.Option(
        None, help="records of a published benchmark: a JSON/JSONL/Parquet file or a directory of them"
    ),
    limit: int | None = typer.Option(None, help="at most this many records per published benchmark subset"),
    out_dir: Path | None = typer.Option(
        None, "--out", help="run directory (default runs/<model>); reruns resume"
    ),
    progress: bool = typer.Option(True, help="show the progress bar"),
    report: bool = typer.Option(True, help="write report.html and the exports into the run directory"),
) -> None:
    """Evaluate a model; with no arguments, the bundled SmolLM2 on the quick suite up to 4k tokens."""
    from longscope import runner

    chosen = load_suite(suite, list(TASKS))
    config = RunConfig(
        model=model,
        suite=chosen.name,
        tasks=split_list(tasks) if tasks is not None else list(chosen.tasks),
        lengths=parse_lengths(lengths if lengths is not None else ",".join(chosen.lengths) or "1k,2k,4k"),
        depths=parse_depths(
            depths if depths is not None else ",".join(f"{d:g}" for d in chosen.depths) or "0.5"
        ),
        samples=samples if samples is not None else (chosen.samples or 1),
        seed=seed,
        retries=retries,
        threshold=threshold,
        truncation=truncation,
        methods=split_list(methods),
        mode=mode,
        data=data,
        limit=limit,
    )
    target = out_dir or _default_out(model)
    try:
        summary = runner.run(config, target, show_progress=progress)
    except KeyboardInterrupt:
        Console(stderr=True).print(
            f"interrupted: finished samples are saved in {target}; run the same command to resume"
        )
        raise typer.Exit(130) from None
    print_summary(summary, target)
    if report:
        from longscope.report.commands import build_report

        out.print(build_report(target, threshold).message, markup=False, highlight=False)


@app.command("methods")
def list_methods() -> None:
    """List the long-context methods, their parameters and what a ratio or budget means for each."""
    import dataclasses as dc

    from longscope.methods import METHODS

    table = Table(title="methods", show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("runs on", no_wrap=True)
    table.add_column("what it does · parameters (defaults)", overflow="fold")
    for name, cls in METHODS.items():
        params = " ".join(
            f"{f.name}={f.default}"
            for f in dc.fields(cls)
            if f.name not in ("ratio", "budget") and f.default is not dc.MISSING
        )
        kind = "in-process models" if cls.in_model else "every backend"
        table.add_row(name, kind, f"{cls.description}\n[dim]{params}[/]" if params else cls.description)
    out.print(table)
    out.print(
        "Write NAME:RATIO (fraction of the context's KV entries dropped, in [0, 1)) or NAME:budget=N (entries "
        "kept), e.g. --methods full,snapkv:0.5,snapkv:budget=1024; any kvpress press as "
        "kvpress:PressName(arg=value):0.5."
    )


@app.command("tasks")
def list_tasks(
    plane: bool = typer.Option(False, "--plane", help="print the difficulty plane as a text grid"),
) -> None:
    """List the tasks with their parameters, metric, and place on the difficulty plane."""
    if plane:
        wide = Console(width=max(out.width, 130))
        wide.print(plane_grid({name: (cls().diffusion, cls().scope) for name, cls in TASKS.items()}))
        return
    table = Table(title="tasks", show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("diffusion", justify="right")
    table.add_column("scope", justify="right")
    table.add_column("metric", no_wrap=True)
    table.add_column("what it asks · parameters (defaults)", overflow="fold")
    for name, cls in TASKS.items():
        task = cls()
        params = " ".join(f"{f.name}={getattr(task, f.name)}" for f in dataclasses.fields(task))
        table.add_row(
            name,
            f"{task.diffusion:.2f}",
            f"{task.scope:.2f}",
            task.metric,
            f"{task.description}\n[dim]{params}[/]",
        )
    out.print(table)
    out.print(
        "Configure a task as NAME(param=value,...), e.g. --tasks 'niah(haystack=noise,value_type=uuid)'."
    )
    out.print("`longscope tasks --plane` places them on the difficulty plane.")


def plane_grid(points: dict[str, tuple[float, float]], bins: int = 5) -> Table:
    """Tasks on a grid: diffusion (how hard to find) rising upwards, scope (how much is needed) to the right."""
    table = Table(title="difficulty plane: diffusion (rows, how hard to find) × scope (columns, how much is needed)",
                  show_lines=True)  # fmt: skip
    table.add_column("diffusion", justify="right", no_wrap=True)
    edges = [i / bins for i in range(bins + 1)]
    for i in range(bins):
        table.add_column(f"{edges[i]:.1f}-{edges[i + 1]:.1f}", no_wrap=True)

    def bucket(value: float) -> int:
        return min(bins - 1, int(value * bins))

    for row in reversed(range(bins)):
        cells = [
            "\n".join(sorted(n for n, (d, sc) in points.items() if bucket(d) == row and bucket(sc) == col))
            for col in range(bins)
        ]
        table.add_row(f"{edges[row]:.1f}-{edges[row + 1]:.1f}", *cells)
    return table


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD, help="score (0-100) that a length must clear to count"
    ),
    by: str | None = typer.Option(None, help="break scores down by a sample metadata key (e.g. hops, depth)"),
    metric: str | None = typer.Option(None, help="summarise a scorer sub-score (e.g. kendall_tau) instead"),
) -> None:
    """Print the summary table of a run again, or a breakdown of it."""
    store = RunStore.open(run_dir, create=False)
    try:
        results = store.results()
        state = store.get_meta("state")
        metadata = store.sample_metadata() if by else {}
    finally:
        store.close()
    if by or metric:
        print_breakdown(breakdown(results, metadata, by=by, metric=metric), run_dir)
    else:
        print_summary(summarise(results, threshold), run_dir)
    if state == "running":
        out.print("[yellow]This run did not finish: the table shows the samples done so far.[/]")


@app.command("report")
def report_command(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    threshold: float | None = typer.Option(
        None, help="score (0-100) a length must clear (default: the run's)"
    ),
) -> None:
    """Write a run's self-contained report.html, with results.csv, summary.json and config.json beside it."""
    from longscope.report.commands import build_report

    out.print(build_report(run_dir, threshold).message, markup=False, highlight=False)


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="two or more run directories"),
    out_path: Path = typer.Option(Path("compare.html"), "--out", help="the page to write (or a directory)"),
    threshold: float | None = typer.Option(None, help="score (0-100) a length must clear"),
) -> None:
    """Compare two or more runs side by side: what overlaps, and what does not."""
    from longscope.report.commands import build_comparison

    out.print(build_comparison(run_dirs, out_path, threshold).message, markup=False, highlight=False)


@app.command()
def cost(
    model: str = typer.Argument(
        ..., help="a preset (llama-3-8b, qwen2.5-7b...), smollm2, hf:PATH or a config.json"
    ),
    context: str = typer.Option("128k", help="context length(s), e.g. 128k or 8k,32k"),
    hardware: str = typer.Option(
        "h100", help="h100, h100-pcie, h200, a100-80g, l4, rtx4090 or cpu (measured)"
    ),
    dtype: str | None = typer.Option(None, help="weights and KV dtype (default: bf16 on GPUs, fp32 on cpu)"),
) -> None:
    """Predict KV bytes, prefill and decode time, concurrency and swap cost for a model on some hardware."""
    from longscope.report.commands import cost_text

    out.print(cost_text(model, context, hardware, dtype), markup=False, highlight=False)


def print_breakdown(table_data: Breakdown, run_dir: Path) -> None:
    if not table_data.cells:
        out.print(f"{run_dir}: nothing to break down by {table_data.by!r}; no sample carries that key")
        return
    what = table_data.metric or "score"
    table = Table(title=f"{what} (0-100) by task and {table_data.by or 'length'} — {run_dir}")
    table.add_column("task")
    for value in table_data.values:
        table.add_column(str(value), justify="right")
    for task in table_data.tasks:
        row = [task]
        for value in table_data.values:
            cell = table_data.cells.get((task, value))
            row.append("" if cell is None or cell.mean is None else f"{cell.mean:.1f} (n={cell.n})")
        table.add_row(*row)
    out.print(table)


def print_summary(summary: Summary, run_dir: Path) -> None:
    if not summary.cells:
        out.print(f"{run_dir}: no results yet")
        return
    table = Table(title=f"score (0-100) by task and length — {run_dir}")
    table.add_column("task")
    for length in summary.lengths:
        table.add_column(fmt_length(length), justify="right")
    table.add_column("effective", justify="right")
    for task in summary.tasks:
        row = [task]
        for length in summary.lengths:
            cell = summary.cells.get((task, length))
            if cell is None:
                row.append("")
                continue
            mean = "—" if cell.mean is None else f"{cell.mean:.1f}"
            failed = f" [red]{cell.failed} failed[/]" if cell.failed else ""
            row.append(f"{mean} (n={cell.n}){failed}")
        row.append(_length_or_none(summary.effective_length(task)))
        table.add_row(*row)
    overall = [summary.overall(length) for length in summary.lengths]
    table.add_row(
        "[bold]mean over tasks[/]",
        *["—" if m is None else f"[bold]{m:.1f}[/]" for m in overall],
        f"[bold]{_length_or_none(summary.effective_length())}[/]",
        end_section=True,
    )
    out.print(table)
    effective = summary.effective_length()
    verdict = (
        f"Effective context length: {fmt_length(effective)} tokens"
        if effective
        else "Effective context length: none of the tested lengths"
    )
    out.print(f"{verdict} (largest length whose mean score is at least {summary.threshold:g}).")
    if summary.failed:
        out.print(f"[red]{summary.failed} samples failed[/]; run the same command again to retry them.")
    if summary.truncated or summary.skipped:
        out.print(
            f"{summary.truncated} samples were truncated to fit the model window and {summary.skipped} skipped "
            "(their truncation policy is in each row)."
        )


def _length_or_none(tokens: int | None) -> str:
    return "—" if tokens is None else fmt_length(tokens)


def main() -> None:
    """Entry point: a usage error is one line and exit code 2; an interrupt keeps what finished."""
    try:
        app()
    except UsageError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

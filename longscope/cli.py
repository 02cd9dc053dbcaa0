"""The ``longscope`` command: run a plan, list tasks, show a run's summary again."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from longscope import terminal
from longscope.analysis.breakdown import breakdown
from longscope.analysis.scores import summarise
from longscope.config import DEFAULT_SUITE, DEFAULT_THRESHOLD, RunConfig
from longscope.core import UsageError
from longscope.redact import install as install_redaction
from longscope.redact import redact
from longscope.store import RunStore
from longscope.suites import load_suite
from longscope.tasks import TASKS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="How far does a language model really read, and what does that cost?",
    pretty_exceptions_enable=False,
)
out = Console()

from longscope.cli_probe import app as probe_app  # noqa: E402 - mounted once the main app exists

app.add_typer(probe_app, name="probe")


def _default_out(model: str) -> Path:
    # openai:URL#MODEL?options names the model after the '#'; other URIs by their last path component.
    name = model.split("#", 1)[1].split("?", 1)[0] if "#" in model else model
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.split("/")[-1].split(":")[-1])
    return Path("runs") / (slug.strip("-.") or "model")


@app.command()
def run(
    model: str = typer.Option(
        RunConfig.model,
        help="smollm2 (bundled), hf:PATH_OR_ID, gguf:PATH or openai:BASE_URL#MODEL[?options]; a server's "
        "timeout follows each request's size (30 s + 1 s per 100 prompt tokens, at most 600 s) unless ?timeout=S",
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
    seed: int | None = typer.Option(None, help=f"first seed (default {RunConfig.seed})"),
    retries: int | None = typer.Option(
        None, help=f"retries of a failed sample before it is recorded as failed (default {RunConfig.retries})"
    ),
    threshold: float | None = typer.Option(
        None, help=f"score (0-100) that a length must clear to count (default {DEFAULT_THRESHOLD:g})"
    ),
    truncation: str | None = typer.Option(
        None,
        help="for samples longer than the model window: middle, left, right or skip "
        "(default: a benchmark's own rule, middle otherwise)",
    ),
    methods: str | None = typer.Option(
        None,
        help="long-context methods to compare, e.g. full,snapkv:0.5,squeezed:budget=1024 (`longscope methods`)",
    ),
    mode: str | None = typer.Option(
        None,
        help="how a sample's questions share its context: independent (each re-reads it), multi-request "
        "(prefilled once, the cache restored after each answer), multi-turn (one conversation, earlier turns "
        "answered with the gold) or multi-turn-own (earlier turns answered with the model's own replies)",
    ),
    data: str | None = typer.Option(
        None, help="records of a published benchmark: a JSON/JSONL/Parquet file or a directory of them"
    ),
    limit: int | None = typer.Option(None, help="at most this many records per published benchmark subset"),
    judge: str | None = typer.Option(
        None,
        help="a model URI that grades open-ended outputs (checklist_writing, hellobench, L-Eval's open-ended "
        "tasks); openai: URIs may give price_in=/price_out= per million tokens",
    ),
    out_dir: str | None = typer.Option(
        None, "--out", help="run directory (default runs/<model>); reruns resume"
    ),
    add: bool = typer.Option(
        False,
        "--add",
        help="add this plan's rows to an existing run of another plan (each invocation is recorded)",
    ),
    executor_name: str = typer.Option(
        "local", "--executor", help="where samples run: local, or ray (pip install 'longscope[ray]')"
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="an existing Ray cluster (HOST:PORT, ray://HOST:PORT or auto); default: a local one",
    ),
    endpoint: list[str] | None = typer.Option(
        None,
        "--endpoint",
        help="with --executor ray and an openai: model, a server with the same model; repeat for each",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", help="model replicas on Ray (default: one per GPU, else one per 4 CPUs)"
    ),
    measure_plane: str = typer.Option(
        "bm25,dense",
        "--measure-plane",
        help="retrievers that measure each sample's diffusion from its evidence (bm25, dense), or none",
    ),
    progress: bool = typer.Option(True, help="show the progress bar"),
    report: bool = typer.Option(True, help="write report.html and the exports into the run directory"),
) -> None:
    """Evaluate a model; with no arguments, the bundled SmolLM2 on the quick suite up to 4k tokens."""
    from longscope import runner

    config = RunConfig.from_options(
        suite=load_suite(suite, list(TASKS)),
        model=model,
        tasks=tasks,
        lengths=lengths,
        depths=depths,
        samples=samples,
        seed=seed,
        retries=retries,
        threshold=threshold,
        truncation=truncation,
        methods=methods,
        mode=mode,
        data=data,
        limit=limit,
        judge=judge,
    )
    if out_dir is not None and not out_dir.strip():
        raise UsageError("--out is empty; give the run directory, e.g. --out runs/mine")
    target = Path(out_dir) if out_dir is not None else _default_out(config.model)
    from longscope.executors.ray import make_executor
    from longscope.retrieval import parse_retrievers

    runner.validate(config)  # bad input fails before a cluster is started for it
    retrievers = parse_retrievers(measure_plane)
    executor = make_executor(executor_name, ray_address, endpoint or [], config.model, workers=ray_workers)
    try:
        summary = runner.run(
            config,
            target,
            executor=executor,
            show_progress=progress,
            add=add,
            plane_retrievers=retrievers,
        )
    except KeyboardInterrupt:
        Console(stderr=True).print(
            f"interrupted: finished samples are saved in {target}; run the same command to resume"
        )
        raise typer.Exit(130) from None
    terminal.print_summary(out, summary, target, config.threshold)
    _print_long_output(target)
    _print_judging(target)
    if report:
        from longscope.report.commands import build_report

        out.print(build_report(target, config.threshold).message, markup=False, highlight=False)


def _print_judging(run_dir: Path) -> None:
    """The judge's share of a run, apart from the model's, and the judged samples skipped for want of one."""
    from longscope.judging.report import judging_lines

    store = RunStore.open(run_dir, create=False)
    try:
        lines = judging_lines(store.results())
    finally:
        store.close()
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command()
def regrade(
    run_dir: Path = typer.Argument(..., help="a run directory graded by a judge"),
    judge: str = typer.Option(..., "--judge", help="another judge's model URI"),
) -> None:
    """Grade a run's judged outputs again with another judge, beside the first judge's rows, and compare them."""
    from longscope.judging.regrade import regrade as regrade_run

    compared = regrade_run(run_dir, judge)
    out.print(compared.sentence(), markup=False, highlight=False)
    _print_judging(run_dir)


@app.command("methods")
def list_methods(
    name: str | None = typer.Argument(None, metavar="NAME", help="one method in full, with every parameter"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="every method in full"),
) -> None:
    """List the long-context methods, one line each; NAME (or --verbose) shows parameters and defaults."""
    from longscope import listing
    from longscope.methods import METHODS

    width = listing.terminal_width()
    if name is not None:
        text = listing.method_detail(name, listing.lookup(METHODS.items(), name, "method"), width)
        if name == "kvpress":  # every installed press, with its arguments
            from longscope.methods.kv._press_lookup import press_catalogue

            text += "\n\n" + listing.kvpress_presses(press_catalogue(), width)
        elif name == "leaderboard":
            from longscope.methods.kv.leaderboard import ALIASES

            text += "\n\n" + listing.leaderboard_names(ALIASES, width)
    elif verbose:
        text = listing.methods_verbose(METHODS.items(), width)
    else:
        text = listing.methods_compact(METHODS.items(), width)
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("tasks")
def list_tasks(
    name: str | None = typer.Argument(None, metavar="NAME", help="one task in full, with every parameter"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="every task in full"),
    plane: bool = typer.Option(False, "--plane", help="place the tasks on the difficulty plane"),
) -> None:
    """List the tasks, one line each; NAME (or --verbose) shows parameters, metric and plane coordinates."""
    from longscope import listing

    width = listing.terminal_width()
    if plane:
        text = plane_grid({task: (cls().diffusion, cls().scope) for task, cls in TASKS.items()}, width=width)
    elif name is not None:
        text = listing.task_detail(name, listing.lookup(TASKS.items(), name, "task"), width)
    elif verbose:
        text = listing.tasks_verbose(TASKS.items(), width)
    else:
        text = listing.tasks_compact(TASKS.items(), width)
    # The text is laid out for the width already; rich must not wrap it a second time.
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def plane_grid(points: dict[str, tuple[float, float]], bins: int = 5, width: int | None = None) -> str:
    """Tasks on the difficulty plane: diffusion (how hard to find) rising upwards, scope (how much is needed)
    to the right; a list of the same cells when the grid would not fit the terminal."""
    from longscope import listing

    return listing.plane_text(points, width or listing.terminal_width(), bins)


def _print_long_output(run_dir: Path) -> None:
    """The long-output lines (methods, positions, the packing drop) after the score tables, when the run has
    long-output rows."""
    from longscope.analysis.long_output import long_output, summary_lines

    store = RunStore.open(run_dir, create=False)
    try:
        analysis = long_output(store.results(), store.sample_metadata())
    finally:
        store.close()
    for line in summary_lines(analysis) if analysis is not None else []:
        out.print(escape(line), highlight=False)


def _print_judges_compared_and_score_by(run_dir: Path) -> None:
    """Two judges compared where the run was regraded, and score by the difficulty keys its samples carry."""
    from longscope.analysis.breakdown import report_breakdowns
    from longscope.report.judging import judging
    from longscope.report.load import load_run

    data = load_run(run_dir)
    found = judging(data)
    terminal.print_judge_comparisons(out, [c.sentence() for c in found.comparisons] if found else [])
    terminal.print_score_by(out, report_breakdowns(data.results, data.metadata), run_dir)


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
        terminal.print_breakdown(out, breakdown(results, metadata, by=by, metric=metric), run_dir)
    else:
        terminal.print_summary(out, summarise(results, threshold), run_dir, threshold)
        _print_long_output(run_dir)
        _print_judging(run_dir)
        _print_judges_compared_and_score_by(run_dir)
    if state == "running":
        out.print("[yellow]This run did not finish: the table shows the samples done so far.[/]")


@app.command("export")
def export_command(
    run_dir: Path = typer.Argument(..., help="a run directory"),
    format_: str = typer.Option(
        "kvpress", "--format", help="kvpress: the folders kvpress's evaluation writes"
    ),
    out_dir: Path | None = typer.Option(None, "--out", help="where to write (default: RUN/kvpress)"),
) -> None:
    """Write a run's rows in another tool's layout: kvpress's evaluation folders (predictions.csv, metrics.json,
    config.yaml per press and ratio), to set beside its leaderboard."""
    from longscope.report.kvpress_export import export_kvpress

    if format_ != "kvpress":
        raise UsageError(f"unknown export format {format_!r}; formats: kvpress")
    target = out_dir or run_dir / "kvpress"
    written = export_kvpress(run_dir, target)
    out.print(f"wrote {len(written)} kvpress result folders under {target}", markup=False, highlight=False)


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


def main() -> None:
    """Entry point: a usage error is one line and exit code 2; an interrupt keeps what finished."""
    install_redaction()  # logs and warnings print no credential either
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:
        # A flag typed wrong is bad input like any other: one line, not a box.
        Console(stderr=True).print(
            f"[red]error:[/] {escape(redact(exc.format_message()))}", highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except UsageError as exc:
        # The message may quote the user's own text, which must print as written, never as markup.
        Console(stderr=True).print(
            f"[red]error:[/] {escape(redact(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()

"""What the CLI calls: write a run's report, compare runs, print the cost model; bad input is a UsageError."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from longscope.cache import atomic_write_text
from longscope.core import UsageError

REPORT_NAME = "report.html"
COMPARISON_NAME = "compare.html"


@dataclass
class Written:
    """A page that was written, the files beside it, and the line to tell the user."""

    path: Path
    message: str
    in_progress: bool = False
    files: list[Path] = field(default_factory=list)


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def build_report(run_dir: Path, threshold: float | None = None) -> Written:
    """Write ``report.html``, ``results.csv``, ``summary.json`` and ``config.json`` into the run directory.

    ``threshold`` defaults to the one the run was made with. A run that has not finished is reported as far
    as it got, and the page and the message say so.
    """
    from longscope.report.exports import write_exports
    from longscope.report.load import load_run
    from longscope.report.page import analyse, render_report

    data = load_run(Path(run_dir))
    analyses = analyse(data, threshold)
    path = data.run_dir / REPORT_NAME
    _write(path, render_report(data, analyses))
    try:
        files = write_exports(data, analyses, data.run_dir)
    except OSError as exc:
        raise UsageError(f"cannot write the exports into {data.run_dir}: {exc.strerror or exc}") from None
    if not data.results:
        message = f"{run_dir} has no results yet; wrote an empty report to {path}"
    elif data.in_progress:
        message = (
            f"{run_dir} has not finished (still running or stopped): the report covers the "
            f"{len(data.results)} samples done so far; wrote {path}"
        )
    else:
        message = f"wrote {path} (with results.csv, summary.json and config.json beside it)"
    failed = sum(table.totals()["failed"] for table in analyses.tables.values())
    if failed and data.results:
        message += f"; {failed} samples failed and are counted apart"
    return Written(path, message, data.in_progress, [path, *files])


def write_report(run_dir: Path, threshold: float | None = None) -> Path:
    """The report of one run; returns the path of ``report.html``."""
    return build_report(run_dir, threshold).path


def _comparison_path(out: Path) -> Path:
    out = Path(out)
    if out.is_dir() or not out.suffix:
        return out / COMPARISON_NAME
    return out


def build_comparison(run_dirs: list[Path], out: Path, threshold: float | None = None) -> Written:
    """Write a comparison page of two or more runs to ``out`` (a .html file, or a directory to hold
    ``compare.html``) and its numbers beside it as JSON."""
    from longscope.report.compare import compare, comparison_dict, render_comparison
    from longscope.report.load import check_run_dir, load_run

    if len(run_dirs) < 2:
        raise UsageError(f"compare needs at least two run directories (got {len(run_dirs)})")
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        resolved = check_run_dir(Path(run_dir)).resolve()
        if resolved in seen:
            raise UsageError(f"{run_dir} is given twice (as {seen[resolved]}); compare different runs")
        seen[resolved] = Path(run_dir)
    runs = [load_run(Path(run_dir)) for run_dir in run_dirs]
    comparison = compare(runs, threshold)
    path = _comparison_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    _write(path, render_comparison(comparison))
    numbers = path.with_suffix(".json")
    _write(numbers, json.dumps(comparison_dict(comparison), indent=1, ensure_ascii=False) + "\n")
    parts = [
        f"wrote {path} comparing {len(runs)} runs on {len(comparison.shared_cells)} shared task × length cells"
    ]
    if comparison.not_shared:
        tasks = sorted({task for task, _ in comparison.not_shared})
        parts.append(f"{len(comparison.not_shared)} cells are not in every run and are listed, not compared "
                     f"(tasks: {', '.join(tasks)})")  # fmt: skip
    if not comparison.shared_cells:
        parts.append("the runs share no task at a common length, so nothing is compared side by side")
    unfinished = [label for label, run in zip(comparison.labels, runs, strict=True) if run.in_progress]
    if unfinished:
        parts.append(f"not finished: {', '.join(unfinished)} (compared as far as they got)")
    return Written(path, "; ".join(parts), bool(unfinished), [path, numbers])


def write_comparison(run_dirs: list[Path], out: Path, threshold: float | None = None) -> Path:
    """The comparison page of two or more runs; returns its path."""
    return build_comparison(run_dirs, out, threshold).path


def cost_text(model: str, context: str, hardware: str, dtype: str | None = None) -> str:
    """The cost model's predictions as plain text: one column per context length (``128k`` or ``32k,128k``).

    ``model``: a preset (llama-3-8b, llama-3-70b, qwen2.5-7b, mistral-7b), ``smollm2``, ``hf:PATH`` or a
    config.json (or its directory). ``hardware``: h100, h100-pcie, h200, a100-80g, l4, rtx4090 or cpu.
    ``dtype``: weights and cache (default bf16; fp32 on ``cpu``, as longscope runs there).
    """
    from longscope.analysis.cost_model import model_shape, predict
    from longscope.analysis.hardware import hardware as profile
    from longscope.report import format as fmt
    from longscope.report.costs import assumptions
    from longscope.spec import parse_lengths

    lengths = parse_lengths(context)
    hw = profile(hardware)
    shape = model_shape(model, dtype or ("fp32" if hw.name == "cpu" else None))
    predictions = [predict(shape, hw, n) for n in lengths]
    free = hw.memory_bytes * hw.usable_memory - shape.weight_bytes
    rows = [
        ("context", [f"{fmt.length(p.tokens)} ({p.tokens:,} tokens)" for p in predictions]),
        ("KV cache per request", [f"{fmt.nbytes(p.kv_bytes)} ({p.kv_bytes:,.0f} B)" for p in predictions]),
        (
            "prefill (time to first token)",
            [f"{fmt.seconds(p.prefill_s)} ({p.prefill_bound}-bound)" for p in predictions],
        ),  # fmt: skip
        ("decode per token", [f"{fmt.seconds(p.decode_s)} ({p.decode_bound}-bound)" for p in predictions]),
        ("concurrent requests that fit", [f"{p.concurrent:,}" for p in predictions]),
        (
            "swap cache to host (one way)",
            ["in host memory already" if p.swap_s is None else fmt.seconds(p.swap_s) for p in predictions],
        ),  # fmt: skip
    ]
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(values[i]) for _, values in rows) for i in range(len(predictions))]
    lines = [shape.describe() + f"; weights {fmt.nbytes(shape.weight_bytes)}", assumptions(shape, hw), ""]
    for label, values in rows:
        cells = "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
        lines.append(f"{label.ljust(label_width)}  {cells}")
    if free <= 0:
        lines.append(
            f"The weights ({fmt.nbytes(shape.weight_bytes)}) do not fit in the usable memory "
            f"({fmt.nbytes(hw.memory_bytes * hw.usable_memory)}) of {hw.name}: no request fits."
        )
    return "\n".join(lines)

"""The report's plots, drawn with matplotlib's Agg canvas and embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from longscope.analysis.cost_model import predict
from longscope.analysis.frontier import COSTS, FrontierPoint
from longscope.analysis.heatmap import DepthGrid
from longscope.analysis.overlay import Overlay
from longscope.analysis.plane import Plane
from longscope.analysis.retrieval_curves import Sweep, VersusFull
from longscope.analysis.scores import ScoreTable
from longscope.report import format as fmt

DPI = 110
SCORE_CMAP = "RdYlGn"  # red is a low score, green a high one, on the fixed 0-100 range
GREY = "#b0b0b0"


@dataclass(frozen=True)
class Plot:
    """One embedded figure: its anchor, title, the one-line caption saying what it shows, and the image."""

    id: str
    title: str
    caption: str
    src: str  # data:image/png;base64,...
    alt: str


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)  # the Agg canvas, attached explicitly: no pyplot, no global backend state
    buffer = io.BytesIO()
    # No timestamp or software tag in the PNG, so the same run renders to the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _palette(count: int) -> list:
    """Distinct colours: matplotlib's ten, or twenty when there are more lines than ten."""
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(count)]


def _length_axis(axis, lengths: list[int]) -> None:
    if len(lengths) > 1 and min(lengths) > 0:
        axis.set_xscale("log", base=2)
    axis.set_xticks(lengths)
    axis.set_xticklabels([fmt.length(n) for n in lengths])
    axis.minorticks_off()
    axis.set_xlabel("length (tokens, whole request)")


def plain(text: str) -> str:
    """Text as matplotlib should print it: a task label with ``$`` in it must not be read as mathtext."""
    return str(text).replace("$", r"\$")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def band(cells) -> tuple[list[float], list[float]]:
    """Lower and upper ends for a shaded band, NaN (a gap) where a point has no interval."""
    lows = [c.low if c.interval.available else math.nan for c in cells]
    highs = [c.high if c.interval.available else math.nan for c in cells]
    return lows, highs


def scores_by_length(table: ScoreTable, method: str | None = None) -> Plot:
    figure = Figure(figsize=(7.5, 4.2))
    axis = figure.add_subplot()
    count = len(table.tasks)
    palette = _palette(count)
    for index, task in enumerate(table.tasks):
        lengths = [n for n in table.lengths if table.cells.get((task, n)) and table.cells[(task, n)].n]
        cells = [table.cells[(task, n)] for n in lengths]
        if not cells:
            continue
        means = [c.mean for c in cells]
        # A cell without an interval gets no bar at all (NaN draws nothing): a bar of zero length would claim
        # a certainty the scores do not have.
        errors = [[max(0.0, c.mean - c.low) if c.interval.available else math.nan for c in cells],
                  [max(0.0, c.high - c.mean) if c.interval.available else math.nan for c in cells]]  # fmt: skip
        # Each task's points are nudged sideways a little, so that equal scores keep apart error bars.
        dodge = 2 ** ((index - (count - 1) / 2) * 0.025)
        axis.errorbar([n * dodge for n in lengths], means, yerr=errors, color=palette[index], marker="o", markersize=4, capsize=3, linewidth=1.2,
                      alpha=0.85, label=plain(task))  # fmt: skip
    overall = [(n, table.overall[n]) for n in table.lengths if table.overall[n].mean is not None]
    if overall:
        xs = [n for n, _ in overall]
        axis.fill_between(xs, *band([c for _, c in overall]), color="black", alpha=0.08, linewidth=0)
        axis.plot(xs, [c.mean for _, c in overall], color="black", linewidth=2.6, marker="s",
                  label="mean over tasks")  # fmt: skip
    axis.axhline(table.threshold, color="#c0392b", linestyle="--", linewidth=1.2,
                 label=f"threshold {table.threshold:g}")  # fmt: skip
    _length_axis(axis, table.lengths)
    axis.set_ylim(-3, 103)
    axis.set_ylabel("score (0-100)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return Plot(
        "fig-scores" + (f"-{_slug(method)}" if method else ""),
        "Score against length" + (f" ({method})" if method else ""),
        f"Mean score of each task at each length with its {100 * table.level:g}% interval (Wilson for pass/fail "
        f"scores, a bootstrap for graded ones; no bar where there are too few samples for one); the black line "
        f"is the mean over tasks with its stratified band where every task has enough samples, the dashed line "
        f"the threshold ({table.threshold:g}) a length's score must exceed to count in the effective length.",
        _png(figure),
        "line chart of score against length per task",
    )


def degradation_plot(series: dict[str, dict[int, float | None]], lengths: list[int]) -> Plot:
    figure = Figure(figsize=(7.5, 3.8))
    axis = figure.add_subplot()
    for name, relative in series.items():
        points = [(n, 100.0 * relative[n]) for n in lengths if relative.get(n) is not None]
        if not points:
            continue
        overall = name == "mean over tasks"
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="s" if overall else "o",
                  markersize=4, linewidth=2.6 if overall else 1.2, color="black" if overall else None,
                  label=plain(name))  # fmt: skip
    axis.axhline(100, color=GREY, linewidth=1)
    _length_axis(axis, lengths)
    axis.set_ylabel("% of the score at the shortest length")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return Plot(
        "fig-degradation",
        "Degradation",
        "Each task's score at every length as a percentage of its score at the shortest length "
        "(100% = nothing lost).",
        _png(figure),
        "line chart of relative score against length",
    )


def heatmap(grid: DepthGrid) -> Plot:
    rows, cols = len(grid.depths), len(grid.lengths)
    figure = Figure(figsize=(min(8.0, 2.2 + 1.1 * cols), min(7.0, 1.4 + 0.45 * rows)))
    axis = figure.add_subplot()
    values = [[grid.mean(d, n) for n in grid.lengths] for d in grid.depths]
    masked = [[math.nan if v is None else v for v in row] for row in values]
    image = axis.imshow(masked, cmap=SCORE_CMAP, vmin=0, vmax=100, aspect="auto", origin="upper")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value is not None:
                axis.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                          color="black" if 25 < value < 85 else "white")  # fmt: skip
    axis.set_xticks(range(cols))
    axis.set_xticklabels([fmt.length(n) for n in grid.lengths])
    axis.set_yticks(range(rows))
    axis.set_yticklabels([f"{d:g}" for d in grid.depths])
    axis.set_xlabel("length (tokens)")
    axis.set_ylabel("needle depth (0 = start)")
    figure.colorbar(image, ax=axis, label="score", fraction=0.05, pad=0.03)
    return Plot(
        f"fig-depth-{_slug(grid.task)}",
        f"Depth × length: {grid.task}",
        f"Mean score of {grid.task} by needle depth (rows, 0 = start of the context) and length (columns).",
        _png(figure),
        f"heatmap of {grid.task} score by depth and length",
    )


def _spread(count: int, radius: float = 0.035) -> list[tuple[float, float]]:
    """Offsets that set tasks sharing one coordinate around it instead of on top of each other."""
    if count == 1:
        return [(0.0, 0.0)]
    return [
        (radius * math.cos(2 * math.pi * k / count), radius * math.sin(2 * math.pi * k / count))
        for k in range(count)
    ]


def plane_plot(plane: Plane) -> Plot:
    panels = len(plane.lengths)
    per_row = min(3, panels)
    rows = math.ceil(panels / per_row)
    figure = Figure(figsize=(3.4 * per_row + 0.9, 3.3 * rows), layout="constrained")
    axes = figure.subplots(rows, per_row, squeeze=False, sharex=True, sharey=True)
    image = None
    for index, length in enumerate(plane.lengths):
        axis = axes[index // per_row][index % per_row]
        by_place: dict[tuple[float, float], list] = {}
        for point in plane.points[length]:
            by_place.setdefault((point.scope, point.diffusion), []).append(point)
        for (scope, diffusion), group in by_place.items():
            for point, (dx, dy) in zip(group, _spread(len(group)), strict=True):
                x, y = scope + dx, diffusion + dy
                if point.score is None:
                    axis.scatter([x], [y], color=GREY, s=60, marker="x")
                else:
                    image = axis.scatter([x], [y], c=[point.score], cmap=SCORE_CMAP, vmin=0, vmax=100, s=70,
                                         edgecolors="black", linewidths=0.5)  # fmt: skip
                axis.annotate(
                    plain(point.task), (x, y), fontsize=6.5, xytext=(4, 3), textcoords="offset points"
                )
                if point.measured:
                    # Where the samples' evidence puts the task: hollow, joined to the declared point.
                    mx, my = point.measured_scope, point.measured_diffusion
                    axis.plot([x, mx], [y, my], color=GREY, linewidth=0.7, zorder=1)
                    axis.scatter([mx], [my], facecolors="none", edgecolors="black", s=45, marker="D",
                                 linewidths=0.8)  # fmt: skip
        axis.set_title(fmt.length(length), fontsize=10)
        axis.set_xlim(-0.05, 1.05)
        axis.set_ylim(-0.05, 1.05)
        axis.grid(alpha=0.3)
        if index // per_row == rows - 1:
            axis.set_xlabel("scope (how much is needed)")
        if index % per_row == 0:
            axis.set_ylabel("diffusion (how hard to find)")
    for index in range(panels, rows * per_row):
        axes[index // per_row][index % per_row].set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes, label="score", shrink=0.8)
    return Plot(
        "fig-plane",
        "Difficulty plane",
        "Every task placed by its scope (right: more of the context needed) and diffusion (up: harder to "
        "find), coloured by mean score, one panel per length; × marks a task with no scored sample; a hollow "
        "diamond joined to a task is where its samples' evidence measures it.",
        _png(figure),
        "scatter plots of tasks on the diffusion-scope plane, one per length",
    )


def frontier_plot(points: dict[str, list[FrontierPoint]]) -> Plot:
    costs = [cost for cost in COSTS if points.get(cost)]
    figure = Figure(figsize=(3.6 * len(costs) + 1.2, 3.6), layout="constrained")
    axes = figure.subplots(1, len(costs), squeeze=False)[0]
    methods = sorted({p.method for cost in costs for p in points[cost]})
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for axis, cost in zip(axes, costs, strict=True):
        for point in points[cost]:
            colour = GREY if point.dominated else colours[point.method]
            axis.scatter([point.cost], [point.score], color=colour, s=50, alpha=0.6 if point.dominated else 1,
                         edgecolors="black" if not point.dominated else "none", linewidths=0.5,
                         zorder=2 if point.dominated else 3)  # fmt: skip
            axis.annotate(fmt.length(point.length), (point.cost, point.score), fontsize=7, xytext=(4, 3),
                          textcoords="offset points", color="#555" if point.dominated else "black")  # fmt: skip
        values = [p.cost for p in points[cost] if p.cost > 0]
        if values and max(values) / min(values) > 20:
            axis.set_xscale("log")
        else:
            axis.xaxis.set_major_locator(MaxNLocator(4))
        if cost == "kv_bytes":
            axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.nbytes(v)))
        axis.set_xlabel(COSTS[cost])
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean score (0-100)")
    for method in methods:
        axes[-1].scatter(
            [], [], color=colours[method], label=plain(method), edgecolors="black", linewidths=0.5
        )
    axes[-1].scatter([], [], color=GREY, label="dominated")
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return Plot(
        "fig-frontier",
        "Accuracy against cost",
        "Mean score of each method at each length (labelled) against its KV-cache bytes, time to first token "
        "and input tokens; grey points are dominated by a cheaper, better method at the same length.",
        _png(figure),
        "scatter plots of score against cost per method",
    )


def overlay_plot(check: Overlay) -> Plot:
    figure = Figure(figsize=(8.4, 3.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    points = check.points
    tokens = sorted({p.input_tokens for p in points})
    grid = list(range(max(1, min(tokens) // 2), max(tokens) * 11 // 10, max(1, max(tokens) // 60)))
    timed = [p for p in points if p.prefill_measured]
    left.scatter([p.input_tokens for p in timed], [p.prefill_measured for p in timed], s=18, color="C0",
                 label="measured", zorder=3)  # fmt: skip
    left.plot(grid, [predict(check.shape, check.hardware, n).prefill_s for n in grid], color="C3",
              label="predicted")  # fmt: skip
    left.set_xlabel("input tokens")
    left.set_ylabel("time to first token (s)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    sized = [p for p in points if p.kv_measured]
    right.scatter([p.held_tokens for p in sized], [p.kv_measured / 2**20 for p in sized], s=18, color="C0",
                  label="measured", zorder=3)  # fmt: skip
    right.plot(grid, [check.shape.kv_bytes(n) / 2**20 for n in grid], color="C3", label="predicted")
    right.set_xlabel("tokens held in the cache")
    right.set_ylabel("KV cache (MiB)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return Plot(
        "fig-cost",
        "Cost model against measurement",
        f"Predicted (line) and measured (dots) time to first token and KV-cache size of {check.shape.name} "
        f"on {check.hardware.name} for every full-cache sample of this run.",
        _png(figure),
        "predicted and measured prefill time and KV bytes against tokens",
    )


def retrieval_plot(sweeps: list[Sweep], versus: list[VersusFull]) -> Plot:
    """Sweeps: score against the swept setting and against total tokens spent; beside full context: each
    method's score against its input tokens, a line from full context's point to it per task and length."""
    panels = (["setting", "spent"] if sweeps else []) + (["versus"] if versus else [])
    figure = Figure(figsize=(3.8 * len(panels) + 1.6, 3.6), layout="constrained")
    axes = dict(zip(panels, figure.subplots(1, len(panels), squeeze=False)[0], strict=True))
    lines = sorted({(s.series, s.setting, s.length) for s in sweeps})
    colours = dict(zip(lines, _palette(len(lines)), strict=True))
    for sweep in sweeps:
        colour = colours[(sweep.series, sweep.setting, sweep.length)]
        label = plain(f"{sweep.series} over {sweep.setting}, {fmt.length(sweep.length)}")
        values = [p.value for p in sweep.points]
        scores = [p.score for p in sweep.points]
        axes["setting"].plot(values, scores, marker="o", color=colour, label=label)
        axes["spent"].plot([p.total_tokens for p in sweep.points], scores, marker="o", color=colour)
    if sweeps:
        if min(p.value for s in sweeps for p in s.points) > 0:
            axes["setting"].set_xscale("log", base=2)
        axes["setting"].set_xlabel("swept setting (k, rounds or budget)")
        axes["spent"].set_xscale("log")
        axes["spent"].set_xlabel("total tokens per answer (all calls, in + out)")
        axes["setting"].legend(fontsize=7, loc="best", frameon=False)
    if versus:
        axis = axes["versus"]
        methods = sorted({v.method for v in versus})
        method_colours = dict(zip(methods, _palette(len(methods)), strict=True))
        for point in versus:
            colour = method_colours[point.method]
            axis.plot([point.full_input_tokens, point.input_tokens], [point.full_score, point.score],
                      color=colour, alpha=0.4, linewidth=0.8)  # fmt: skip
            axis.scatter([point.input_tokens], [point.score], color=colour, s=30, zorder=3)
            axis.scatter(
                [point.full_input_tokens], [point.full_score], color="black", marker="s", s=20, zorder=3
            )
        for method in methods:
            axis.scatter([], [], color=method_colours[method], label=plain(method))
        axis.scatter([], [], color="black", marker="s", label="full context")
        # A log axis needs every point above zero (a method that sent nothing, e.g. a test's hand-made rows).
        if all((p.input_tokens or 0) > 0 and (p.full_input_tokens or 0) > 0 for p in versus):
            axis.set_xscale("log")
        axis.set_xlabel("input tokens per answer (all calls)")
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    for axis in axes.values():
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3)
    next(iter(axes.values())).set_ylabel("mean score (0-100)")
    return Plot(
        "fig-retrieval",
        "Score against what is sent",
        "Methods that differ in one setting (k, rounds, budget) drawn as one line, against that setting and "
        "against the tokens they spend; then each method at each task and length beside full context (black "
        "squares), joined by a line.",
        _png(figure),
        "score against swept setting, tokens spent, and input tokens beside full context",
    )

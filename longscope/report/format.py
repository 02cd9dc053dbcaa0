"""How the report writes numbers: lengths as 1k/4k, bytes in binary units, seconds and scores briefly, and
every interval with the name of the rule that made it, or the reason there is none."""

from __future__ import annotations

from dataclasses import dataclass, field

from longscope.analysis.intervals import Interval
from longscope.spec import format_length


def length(tokens: int | None) -> str:
    return format_length(tokens)


def score(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    # Rounding must not make a real interval look like a point: widen the digits until its ends differ.
    for digits in (1, 2, 3):
        shown = f"{low:.{digits}f}", f"{high:.{digits}f}"
        if shown[0] != shown[1] or high - low <= 0:
            break
    return f"[{shown[0]}, {shown[1]}]"


# What each interval kind is, in words a reader of a table can check against the method.
KINDS = {
    "wilson": "Wilson score interval (pass/fail scores, each sample its own context)",
    "wilson (per context)": "Wilson score interval counting each context once (pass/fail questions that share "
    "contexts, fewer than 10 contexts)",
    "bootstrap": "percentile bootstrap over samples",
    "cluster bootstrap": "percentile bootstrap drawing whole contexts (questions sharing one are drawn together)",
    "wilson bound": "Wilson bound of the mean (every bootstrap resample gave the same mean; the bound holds for "
    "any score in 0-100)",
    "stratified bootstrap": "stratified bootstrap over tasks (each task resampled within itself, every task "
    "weighing the same)",
}
# The area under the curve is bootstrapped by the same rule, with every cell under it as a stratum.
AUC_KIND = (
    "stratified bootstrap of the area (every task × length cell resampled within itself, the curve redrawn)"
)


def kind_text(iv: Interval, level: float = 0.95, described: str | None = None) -> str:
    """``95% Wilson score interval (...)`` or ``no interval: <reason>``; ``described`` names the rule where the
    kind alone would mislead (the AUC's strata are cells, not tasks)."""
    if not iv.available:
        return f"no interval: {iv.reason}" if iv.reason else "no interval"
    return f"{100 * level:g}% {described or KINDS.get(iv.kind, iv.kind)}"


def interval_text(iv: Interval) -> str:
    """The interval as the tables print it: its ends, or ``no interval`` (the reason goes in the legend);
    never an empty string, so a missing interval cannot pass for a missing number."""
    return interval(iv.low, iv.high) if iv.available else "no interval"


@dataclass
class Legend:
    """Footnote marks for the interval kinds and the reasons of missing intervals in one table, each text
    marked once (a, b, ...) and listed under the table, so every cell can say how its interval was made."""

    level: float = 0.95
    marks: dict[str, str] = field(default_factory=dict)  # text -> mark

    def cell(self, iv: Interval, described: str | None = None) -> dict[str, str]:
        """What a template needs to print one interval: its text, its mark and the mark's meaning."""
        text = kind_text(iv, self.level, described)
        if text not in self.marks:
            self.marks[text] = _letters(len(self.marks))
        return {"ci": interval_text(iv), "mark": self.marks[text], "title": text}

    @property
    def entries(self) -> list[dict[str, str]]:
        return [{"mark": mark, "text": text} for text, mark in self.marks.items()]


def _letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def nbytes(value: float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} TiB"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 120:
        return f"{value:.3g} s"
    return f"{value / 60:.3g} min"


def percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def flops(value: float) -> str:
    """FLOP/s in the largest unit that keeps the number above one: a CPU in GFLOP/s, a GPU in TFLOP/s."""
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if value >= scale:
            return f"{value / scale:,.3g} {unit}"
    return f"{value:,.3g} FLOP/s"

"""How the report writes numbers: lengths as 1k/4k, bytes in binary units, seconds and scores briefly."""

from __future__ import annotations


def length(tokens: int | None) -> str:
    if tokens is None:
        return "—"
    if tokens % 1024 == 0:
        return f"{tokens // 1024}k"
    if tokens % 512 == 0:
        return f"{tokens / 1024:g}k"
    return str(tokens)


def score(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:.1f}, {high:.1f}]"


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

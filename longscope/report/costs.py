"""The cost section of a report: which model shape and machine profile describe a run, and their predictions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from longscope.analysis.cost_model import ModelShape, model_shape, predict
from longscope.analysis.hardware import PRESETS, Hardware, hardware
from longscope.analysis.overlay import Overlay, overlay
from longscope.core import Result, UsageError
from longscope.report import format as fmt

# Substrings of torch.cuda.get_device_name() and the preset each names, most specific first.
_GPU_NAMES = (("H100 PCIe", "h100-pcie"), ("H100", "h100"), ("H200", "h200"), ("A100", "a100-80g"),
              ("L4", "l4"), ("4090", "rtx4090"))  # fmt: skip


@dataclass
class CostCheck:
    overlay: Overlay | None
    note: str  # why there is no overlay, or what it assumed
    shape: ModelShape | None = None
    hardware: Hardware | None = None
    lengths: list[int] = field(default_factory=list)


def this_machine() -> tuple[Hardware, str]:
    """The profile and dtype longscope's in-process backend runs at here: bf16 on a known GPU, else float32
    on this CPU (measured). A GPU the presets do not know has no profile."""
    try:
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            for part, preset in _GPU_NAMES:
                if part in name:
                    return PRESETS[preset], "bf16"
            raise UsageError(f"no hardware profile for {name}")
    except ImportError:
        pass
    return hardware("cpu"), "fp32"


def check_run(model_uri: str | None, results: list[Result]) -> CostCheck:
    """Predict the run's own rows with its own model's shape on this machine, or say why that cannot be done."""
    results = [r for r in results if r.length]  # rejected benchmark records have no length and no cost
    lengths = sorted({r.length for r in results})
    if not model_uri:
        return CostCheck(
            None, "The run records no model, so the cost model has nothing to check.", lengths=lengths
        )
    try:
        hw, dtype = this_machine()
    except UsageError as exc:
        return CostCheck(None, f"The cost model was not checked: {exc}.", lengths=lengths)
    try:
        shape = model_shape(model_uri, dtype)
    except UsageError as exc:
        return CostCheck(
            None,
            f"The cost model was not checked: the shape of {model_uri} is not readable here ({exc}).",
            hardware=hw,
            lengths=lengths,
        )
    shape = replace(shape, name=shape.name or model_uri)
    check = overlay(results, shape, hw)
    if not check.points:
        return CostCheck(
            None, "No finished full-cache rows to check the cost model against.", shape, hw, lengths
        )
    return CostCheck(check, "", shape, hw, lengths)


def summary_line(check: Overlay) -> str:
    parts = []
    for what, words in (("prefill", "time to first token"), ("kv", "KV-cache bytes")):
        mean_abs, median = check.mean_abs_error(what), check.median_error(what)
        if mean_abs is None:
            parts.append(f"{words}: not measured")
            continue
        parts.append(
            f"{words} predicted with a mean absolute error of {fmt.percent(mean_abs)} over {check.count(what)} "
            f"rows (median {fmt.percent(median, signed=True)}; positive means predicted too high)"
        )
    return (
        f"The cost model for {check.shape.describe()} on {check.hardware.name} "
        f"({check.hardware.description}): "
        + "; ".join(parts)
        + ". KV bytes are exact counts; measured times "
        "also carry whatever else the machine was doing, and the first sample pays for warm-up."
    )


def length_rows(check: Overlay) -> list[list[str]]:
    return [
        [
            fmt.length(c.length),
            str(c.n),
            fmt.seconds(c.prefill_measured),
            fmt.seconds(c.prefill_predicted),
            fmt.percent(c.prefill_error, signed=True),
            fmt.nbytes(c.kv_measured),
            fmt.nbytes(c.kv_predicted),
            fmt.percent(c.kv_error, signed=True),
        ]
        for c in check.per_length
    ]


def prediction_rows(shape: ModelShape, hw: Hardware, lengths: list[int]) -> list[list[str]]:
    rows = []
    for length in lengths:
        p = predict(shape, hw, length)
        rows.append(
            [
                f"{fmt.length(length)} ({length:,})",
                fmt.nbytes(p.kv_bytes),
                fmt.seconds(p.prefill_s),
                fmt.seconds(p.decode_s),
                f"{p.concurrent:,}",
                "in host memory already" if p.swap_s is None else fmt.seconds(p.swap_s),
            ]
        )
    return rows


def assumptions(shape: ModelShape, hw: Hardware) -> str:
    link = "no host link (the cache is in host memory)" if hw.host_link_bytes_s is None else (
        f"host link {hw.host_link_bytes_s / 1e9:,.0f} GB/s"
    )  # fmt: skip
    return (
        f"{hw.name}: {hw.description}; {hw.memory_bytes / 1e9:.3g} GB memory ({hw.usable_memory:.0%} usable), "
        f"{hw.bandwidth_bytes_s / 1e9:,.0f} GB/s at {hw.bandwidth_efficiency:.0%} efficiency, "
        f"{fmt.flops(hw.peak_flops)} {hw.flops_dtype} at {hw.compute_efficiency:.0%} efficiency; {link}. "
        f"Source: {hw.source}."
    )

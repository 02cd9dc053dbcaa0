"""Score against KV bytes held and KV bytes loaded per step for the seed methods beside kvpress presses, on
ruler-like needle samples at 4k with several questions per context, bundled model, side by side in one run.

Usage: .venv/bin/python bench/seed_methods.py [--length 4k] [--samples 2] [--methods full,longheads:0.5,...] [--summarise-only]
Writes bench/results/seed_methods.json: per method, the mean score, KV bytes held at the answer's end, KV bytes
read per decode step (the block-selecting methods), entries removed or masked, the first turn's prefill time
(its TTFT, the context's prefill included) as a ratio to full's on the same contexts (what LazyLLM's pruning
saves), and the paired difference from full. The run is multi-turn (SirLLM's memory lives across turns; the others answer each turn over the same
conversation); the run directory is kept under bench/results/seed_methods_run (a rerun resumes it).

Scores and bytes do not depend on the machine's load, prefill times do: ``--timing-only --samples 3 --methods
full,lazyllm:0.5`` runs those contexts afresh into bench/results/seed_methods_timing_run (methods alternating in
one process, on a quiet machine) and takes the TTFT ratios from there, keeping everything else from the stored
score run; the load average before and after is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_METHODS = "full,longheads:0.5,infllm:0.5,sirllm:0.5,lazyllm:0.5,snapkv:0.5,streaming-llm:0.5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="4k")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="write the JSON from the rows the run directories hold now",
    )
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="measure the first turn's prefill afresh on --samples contexts (a quiet machine), keeping the scores",
    )
    args = parser.parse_args()

    from stored_rows import ok_rows

    from longscope.analysis.paired import method_differences
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import DB_NAME

    out = HERE / "results" / "seed_methods_run"
    timing_out = HERE / "results" / "seed_methods_timing_run"
    config = RunConfig(
        model="smollm2",
        suite=None,
        tasks=["niah_multikey(questions=3,value_type=word,max_new_tokens=8)"],
        lengths=parse_lengths(args.length),
        depths=[0.5],
        samples=args.samples,
        methods=split_list(args.methods),
        mode="multi-turn",
    )
    started = time.perf_counter()
    load_before = os.getloadavg()
    if args.timing_only:
        # A fresh directory: every timing in it comes from this one process on this machine's present load.
        shutil.rmtree(timing_out, ignore_errors=True)
        run(config, timing_out, show_progress=True)
        loads = {"load_average_1_5_15_before": [round(x, 2) for x in load_before],
                 "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
        (timing_out / "load.json").write_text(json.dumps(loads) + "\n")
    elif not args.summarise_only:
        run(config, out, show_progress=True)
    wall = time.perf_counter() - started

    rows = ok_rows(out) if (out / DB_NAME).exists() or not args.timing_only else []
    timed = (timing_out / DB_NAME).exists() and (args.timing_only or args.summarise_only)
    timing_rows = ok_rows(timing_out) if timed else rows
    timing: dict = {"source": "timing run (--timing-only)" if timed else "score run (loaded machine)"}
    if timed and (timing_out / "load.json").exists():
        timing |= json.loads((timing_out / "load.json").read_text())

    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ttft: dict[str, dict[str, float]] = defaultdict(dict)  # method -> sample -> first turn's prefill
    for row in timing_rows:
        if row.turn == 0 and row.prefill_s is not None:
            ttft[row.method][row.sample_id] = row.prefill_s
    for row in rows:
        bucket = columns[row.method]
        for name in ("score", "kv_bytes", "kv_bytes_loaded", "kv_removed", "kv_masked", "prefill_s",
                     "attention_flops_skipped"):  # fmt: skip
            value = getattr(row, name)
            if value is not None:
                bucket[name].append(100.0 * value if name == "score" else float(value))

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    table = {
        method: {name: mean(values) for name, values in bucket.items()} | {"n": len(bucket["score"])}
        for method, bucket in columns.items()
    }
    for method, stats in table.items():
        shared = [s for s in ttft[method] if s in ttft.get("full", {})]
        stats["ttft_s"] = mean(list(ttft[method].values()))
        stats["ttft_ratio_to_full"] = mean([ttft[method][s] / ttft["full"][s] for s in shared])
        stats["contexts"] = len({row.sample_id for row in rows if row.method == method})
        stats["timed_contexts"] = len(ttft[method])
    full = table.get("full", {})
    for stats in table.values():
        if full.get("kv_bytes") and stats.get("kv_bytes"):
            stats["kv_fraction_of_full"] = round(stats["kv_bytes"] / full["kv_bytes"], 3)
    differences = [
        {"method": d.other, "difference": d.difference, "low": d.low, "high": d.high, "n": d.n, "test": d.test,
         "p_value": d.p_value, "note": d.reason}
        for d in method_differences(rows, "full")
    ]  # fmt: skip
    result = {
        "length": config.lengths,
        "task": config.tasks,
        "mode": config.mode,
        "samples": args.samples,
        "methods": table,
        "paired_vs_full": differences,
        "timing": timing,
        "wall_s": round(wall, 1),
        "complete": not args.summarise_only and not args.timing_only,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "shared 2-core CPU under heavy load from other jobs, run under nice -n 19, unless 'timing' names a "
        "quiet timing run: prefill times are comparable only as ratios to full on the same contexts (methods "
        "alternate per context)",
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "seed_methods.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Time to first token and score of each sparse prefill against full at 8k (8,100 tokens) on the bundled model, side by side.

Usage: .venv/bin/python bench/sparse_prefill.py [--length 8100] [--samples 3] [--methods full,a-shape,...]
       [--summarise-only] [--timing-only]
Writes bench/results/sparse_prefill.json: per method, the mean prefill time of each context's first question
(its TTFT: the context's prefill plus the question's), the ratio to full's on the same contexts, the share of
attention work skipped, the score, and the paired difference from full (analysis/paired.py) with its interval.
Methods alternate on every context (the plan's order), so a busy shared machine slows them alike; the run
directory is kept under bench/results/sparse_prefill_run (a rerun resumes it).

Scores do not depend on the machine's load, TTFT ratios do. So the score part can run on a busy machine and the
timing part later on a quiet one: ``--timing-only --samples 3`` runs the first 3 contexts afresh into
bench/results/sparse_prefill_timing_run (all methods alternating in this one process) and takes TTFT from there,
keeping the scores and paired intervals of the stored score run. The load average before and after each part is
recorded beside its timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_METHODS = "full,a-shape(sinks=64,window=1024),tri-shape(sinks=64,window=1024),vertical-slash(vertical=512,slash=1024)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Just under 8k: the second question of a niah sample built to exactly 8192 can need a few tokens more than
    # the window, and the plan then skips the whole sample in multi-request mode.
    parser.add_argument("--length", default="8100")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="write the JSON from the rows the run directories hold now",
    )
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="measure TTFT afresh on --samples contexts (a quiet machine), keeping the stored scores",
    )
    args = parser.parse_args()

    from stored_rows import ok_rows

    from longscope.analysis.paired import method_differences
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import DB_NAME

    out = HERE / "results" / "sparse_prefill_run"
    timing_out = HERE / "results" / "sparse_prefill_timing_run"
    config = RunConfig(
        model="smollm2",
        suite=None,
        tasks=["niah(questions=2,max_new_tokens=12)"],
        lengths=parse_lengths(args.length),
        depths=[0.5],
        samples=args.samples,
        methods=split_list(args.methods),
        mode="multi-request",
    )
    started = time.perf_counter()
    load_before = os.getloadavg()
    if args.timing_only:
        # A fresh directory: every timing in it comes from this one process on this machine's present load.
        shutil.rmtree(timing_out, ignore_errors=True)
        run(dataclasses.replace(config, samples=args.samples), timing_out, show_progress=True)
    elif not args.summarise_only:
        run(config, out, show_progress=True)
    load_after = os.getloadavg()
    wall = time.perf_counter() - started

    rows = ok_rows(out) if (out / DB_NAME).exists() or not args.timing_only else []
    timed = timing_out.exists() and (args.timing_only or args.summarise_only)
    timing_rows = ok_rows(timing_out) if timed else rows
    timing = {
        "source": "timing run (--timing-only)" if timed else "score run",
        "contexts": len({row.sample_id for row in timing_rows if row.method == "full"}),
    }
    loads = {"load_average_1_5_15_before": [round(x, 2) for x in load_before],
             "load_average_1_5_15_after": [round(x, 2) for x in load_after]}  # fmt: skip
    if args.timing_only:
        (timing_out / "load.json").write_text(json.dumps(loads) + "\n")
    if timed and (timing_out / "load.json").exists():
        timing |= json.loads((timing_out / "load.json").read_text())
    elif not timed and not args.summarise_only:
        timing |= loads

    ttft: dict[str, dict[str, float]] = defaultdict(dict)  # method -> sample -> first question's prefill
    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in timing_rows:
        if row.turn == 0 and row.prefill_s is not None:
            ttft[row.method][row.sample_id] = row.prefill_s
    for row in rows:
        if row.turn == 0 and row.attention_flops_skipped is not None:
            columns[row.method]["attention_flops_skipped"].append(row.attention_flops_skipped)
        if row.score is not None:
            columns[row.method]["score"].append(100.0 * row.score)

    def mean(values) -> float | None:
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    table = {}
    for method in dict.fromkeys([*ttft, *columns]):
        shared = [s for s in ttft[method] if s in ttft.get("full", {})]
        ratios = [ttft[method][s] / ttft["full"][s] for s in shared]
        table[method] = {
            "ttft_s": mean(ttft[method].values()),
            "ttft_ratio_to_full": mean(ratios),
            "attention_flops_skipped": mean(columns[method]["attention_flops_skipped"]),
            "score": mean(columns[method]["score"]),
            "n_scores": len(columns[method]["score"]),
            "contexts": len({row.sample_id for row in rows if row.method == method}),
            "timed_contexts": len(ttft[method]),
        }
    differences = [
        {
            "method": d.other,
            "mean_difference": d.difference,
            "low": d.low,
            "high": d.high,
            "n": d.n,
            "test": d.test,
            "p_value": d.p_value,
            "note": d.reason,
        }
        for d in method_differences(rows, "full")
    ]
    result = {
        "length": config.lengths,
        "task": config.tasks,
        # the score run's contexts (a timing-only run's are in "timing")
        "samples": len({row.sample_id for row in rows}) if args.timing_only else args.samples,
        "methods": table,
        "paired_vs_full": differences,
        "timing": timing,
        "wall_s": round(wall, 1),
        "complete": not args.summarise_only and not args.timing_only,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "2-core CPU shared with other jobs unless timing's load averages show it quiet: timings are ratios "
        "within one process, methods alternating per context",
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "sparse_prefill.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

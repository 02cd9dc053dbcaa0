"""Time to first token and score of each sparse prefill against full at 8k (8,100 tokens) on the bundled model, side by side.

Usage: .venv/bin/python bench/sparse_prefill.py [--length 8100] [--samples 3] [--methods full,a-shape,...] [--summarise-only]
Writes bench/results/sparse_prefill.json: per method, the mean prefill time of each context's first question
(its TTFT: the context's prefill plus the question's), the ratio to full's on the same contexts, the share of
attention work skipped, the score, and the paired difference from full (analysis/paired.py) with its interval.
Methods alternate on every context (the plan's order), so a busy shared machine slows them alike; the run
directory is kept under bench/results/sparse_prefill_run (a rerun resumes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
        help="write the JSON from the rows the run directory holds now",
    )
    args = parser.parse_args()

    from longscope.analysis.paired import method_differences
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import RunStore

    out = HERE / "results" / "sparse_prefill_run"
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
    if not args.summarise_only:
        run(config, out, show_progress=True)
    wall = time.perf_counter() - started
    store = RunStore.open(out, create=False)
    rows = [row for row in store.results() if row.status == "ok"]
    store.close()

    ttft: dict[str, dict[str, float]] = defaultdict(dict)  # method -> sample -> first question's prefill
    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.turn == 0 and row.prefill_s is not None:
            ttft[row.method][row.sample_id] = row.prefill_s
            if row.attention_flops_skipped is not None:
                columns[row.method]["attention_flops_skipped"].append(row.attention_flops_skipped)
        if row.score is not None:
            columns[row.method]["score"].append(100.0 * row.score)

    def mean(values) -> float | None:
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    table = {}
    for method in ttft:
        shared = [s for s in ttft[method] if s in ttft.get("full", {})]
        ratios = [ttft[method][s] / ttft["full"][s] for s in shared]
        table[method] = {
            "ttft_s": mean(ttft[method].values()),
            "ttft_ratio_to_full": mean(ratios),
            "attention_flops_skipped": mean(columns[method]["attention_flops_skipped"]),
            "score": mean(columns[method]["score"]),
            "n_scores": len(columns[method]["score"]),
            "contexts": len(ttft[method]),
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
        "samples": args.samples,
        "methods": table,
        "paired_vs_full": differences,
        "wall_s": round(wall, 1),
        "complete": not args.summarise_only,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "shared 2-core CPU, other jobs running: timings are ratios within one run, methods alternating",
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "sparse_prefill.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

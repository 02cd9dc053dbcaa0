"""Score against KV bytes held and KV bytes loaded per step for the seed methods beside kvpress presses, on
ruler-like needle samples at 4k with several questions per context, bundled model, side by side in one run.

Usage: .venv/bin/python bench/seed_methods.py [--length 4k] [--samples 2] [--methods full,longheads:0.5,...] [--summarise-only]
Writes bench/results/seed_methods.json: per method, the mean score, KV bytes held at the answer's end, KV bytes
read per decode step (the block-selecting methods), entries removed or masked, the first turn's prefill time
(its TTFT, the context's prefill included) as a ratio to full's on the same contexts (what LazyLLM's pruning
saves), and the paired difference from full. The run is multi-turn (SirLLM's memory lives across turns; the others answer each turn over the same
conversation); the run directory is kept under bench/results/seed_methods_run (a rerun resumes it).
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
DEFAULT_METHODS = "full,longheads:0.5,infllm:0.5,sirllm:0.5,lazyllm:0.5,snapkv:0.5,streaming-llm:0.5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="4k")
    parser.add_argument("--samples", type=int, default=2)
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

    out = HERE / "results" / "seed_methods_run"
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
    if not args.summarise_only:
        run(config, out, show_progress=True)
    wall = time.perf_counter() - started
    store = RunStore.open(out, create=False)
    rows = [row for row in store.results() if row.status == "ok"]
    store.close()

    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ttft: dict[str, dict[str, float]] = defaultdict(dict)  # method -> sample -> first turn's prefill
    for row in rows:
        if row.turn == 0 and row.prefill_s is not None:
            ttft[row.method][row.sample_id] = row.prefill_s
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
        stats["contexts"] = len(ttft[method])
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
        "wall_s": round(wall, 1),
        "complete": not args.summarise_only,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "note": "shared 2-core CPU under heavy load from other jobs, run under nice -n 19: prefill times are "
        "comparable only as ratios to full on the same contexts (methods alternate per context)",
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "seed_methods.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

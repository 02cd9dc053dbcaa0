"""Evicting and selecting KV methods at half the KV bytes against full, paired, on 4k NIAH of the ruler-like suite.

Usage: .venv/bin/python bench/kv_half_bytes.py [--methods full,snapkv:0.5,...] [--samples 5] [--length 4k]
Writes bench/results/kv_half_bytes.json. Target: a method that drops or skips KV entries, at half of full's KV
bytes, keeps at least 95 % of full's score on at least 20 samples, with the paired interval (analysis/paired.py:
the difference to full in points and its bootstrap interval over the samples, McNemar's exact test for pass/fail).
Query-aware modes count: the question is then compressed with the context, as kvpress's evaluation does.

All methods run in one process over the same samples (the four NIAH tasks of the ruler-like suite, ``--samples``
each), so the figures are side by side. The run directory is kept under bench/results/kv_half_bytes_run (a rerun
resumes it). Timings are on a shared 2-core machine and are not the point here.
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
TASKS = ("niah(haystack=noise)", "niah", "niah(value_type=uuid)", "niah_multikey")
# The last is chunkkv with chunks of 64 (SmolLM2 writes a uuid as 34 tokens, which chunks of 20 always split);
# bench/kv_needle_retention.py shortlisted it.
DEFAULT_METHODS = (
    "full,finch:0.5,leaderboard:chunkkv(query_aware=true):0.5,"
    "kvpress:ChunkKVPress(press=SnapKVPress,chunk_length=64,query_aware=true):0.5"
)
TARGET = 0.95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="4k")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--samples", type=int, default=5, help="samples per task (four tasks)")
    parser.add_argument(
        "--summarize", action="store_true", help="write the figures from the rows stored so far, run nothing"
    )
    args = parser.parse_args()

    from longscope.analysis.paired import method_differences
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import RunStore

    out = HERE / "results" / "kv_half_bytes_run"
    config = RunConfig(
        model="smollm2",
        suite="ruler-like",
        tasks=list(TASKS),
        lengths=parse_lengths(args.length),
        depths=[0.5],
        samples=args.samples,
        methods=split_list(args.methods),
    )
    started = time.perf_counter()
    if not args.summarize:
        # add=True: methods tried later go into the same run beside the stored ones; finished rows resume.
        run(config, out, show_progress=True, add=True)
    wall = time.perf_counter() - started
    store = RunStore.open(out, create=False)
    rows = store.results()
    store.close()

    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.status != "ok" or row.score is None:
            continue
        bucket = columns[row.method]
        bucket["score"].append(100.0 * row.score)
        bucket["kv_bytes"].append(float(row.kv_bytes or 0))
        bucket["input_tokens"].append(float(row.input_tokens or 0))
        bucket["prefill_s"].append(float(row.prefill_s or 0))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    table = {
        method: {name: round(mean(values), 3) for name, values in cols.items()} | {"n": len(cols["score"])}
        for method, cols in columns.items()
    }
    full = table.get("full")
    differences = {d.other: d for d in method_differences(rows, "full") if d.length is not None}
    # A method that has run on fewer samples than full (a stopped or still running bench) is set against full on
    # the samples both have, never against full's mean over samples it has not seen.
    scored = {
        (row.method, row.sample_id): row for row in rows if row.status == "ok" and row.score is not None
    }
    best = None
    for method, stats in table.items():
        if full is None or method == "full":
            continue
        common = [sid for (m, sid) in scored if m == method and ("full", sid) in scored]
        full_score = mean([100.0 * scored["full", sid].score for sid in common])
        full_bytes = mean([float(scored["full", sid].kv_bytes or 0) for sid in common])
        stats["full_score_on_same_samples"] = round(full_score, 3)
        stats["kv_fraction_of_full"] = round(stats["kv_bytes"] / full_bytes, 3) if full_bytes else None
        stats["score_fraction_of_full"] = round(stats["score"] / full_score, 3) if full_score else None
        paired = differences.get(method)
        if paired is not None:
            stats["paired"] = {
                "difference_points": None if paired.difference is None else round(paired.difference, 2),
                "low": None if paired.low is None else round(paired.low, 2),
                "high": None if paired.high is None else round(paired.high, 2),
                "test": paired.test,
                "p_value": None if paired.p_value is None else round(paired.p_value, 4),
                "n": paired.n,
                "sentence": paired.sentence(),
            }
        fraction = stats["score_fraction_of_full"]
        if fraction is not None and (best is None or fraction > table[best]["score_fraction_of_full"]):
            best = method
    met = bool(
        best
        and table[best]["score_fraction_of_full"] >= TARGET
        and table[best]["n"] >= 20
        and table[best]["kv_fraction_of_full"] <= 0.55
    )
    result = {
        "length": config.lengths,
        "tasks": config.tasks,
        "samples_per_task": args.samples,
        "methods": table,
        "best": best,
        "best_score_fraction_of_full": table[best]["score_fraction_of_full"] if best else None,
        "target_score_fraction_of_full": TARGET,
        "target_met": met,
        "note": "kv_bytes: bytes held when the answer ended (context, question and answer); a 0.5 ratio removes "
        "half of the prefilled entries, so the held fraction sits near 0.5: a little above where the question "
        "suffix and the answer are kept whole, a little below for chunked presses (kvpress keeps whole chunks, "
        "rounding down)",
        "complete": not args.summarize,
        "wall_s": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "shared_machine": True,
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "kv_half_bytes.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

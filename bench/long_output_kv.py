"""Score against KV bytes for long outputs: kvpress decoding presses beside the full cache, on the bundled model.

Usage: .venv/bin/python bench/long_output_kv.py [--methods full,...] [--length 2k] [--samples 1] [--tasks ...]
       [--out DIR]   (keep the run; the same command with the same DIR resumes it)
Writes bench/results/long_output_kv.json.

A decoding press compresses the cache while the answer is written (every ``compression_interval`` steps, down to
``target_size`` entries per layer and head), so it is long outputs that exercise it: the longer the answer, the
more of the held cache is answer rather than context. All methods run in one process over the same samples of
small long-output tasks (the longgen suite's families, outputs up to 512 tokens), so the figures are side by side:
mean score, mean KV bytes held when the answer ended, their ratio to full, and the paired difference to full
(analysis/paired.py). Timings are on a shared 2-core machine and are not the point here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = (
    "packed_questions(questions=5)",
    "length_following(words=150)",
    "procedural(kind=procedure,budget=512)",
)
DEFAULT_METHODS = (
    "full,"
    "kvpress:DecodingPress(base_press=KnormPress,compression_interval=16,target_size=1024),"
    "kvpress:DecodingPress(base_press=KnormPress,compression_interval=16,target_size=512)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", default="2k")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--samples", type=int, default=1, help="samples (seeds) per task")
    parser.add_argument("--tasks", default=",".join(TASKS), help="long-output tasks (comma-separated specs)")
    parser.add_argument("--out", help="run directory to keep (and resume: the same command continues it)")
    args = parser.parse_args()

    from longscope.analysis.paired import method_differences
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import RunStore

    # The run directory is scratch: the figures that matter go to the JSON.
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="long_output_kv_"))
    config = RunConfig(
        model="smollm2",
        tasks=split_list(args.tasks),
        lengths=parse_lengths(args.length),
        depths=[0.5],
        samples=args.samples,
        methods=split_list(args.methods),
    )
    started = time.perf_counter()
    run(config, out, show_progress=True)
    wall = time.perf_counter() - started
    store = RunStore.open(out, create=False)
    try:
        rows = store.results()
    finally:
        store.close()

    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_task: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        if row.status != "ok" or row.score is None:
            continue
        bucket = columns[row.method]
        bucket["score"].append(100.0 * row.score)
        bucket["kv_bytes"].append(float(row.kv_bytes or 0))
        if row.kv_entries is not None:  # full does not count entries: no figure rather than a false 0
            bucket["kv_entries"].append(float(row.kv_entries))
        bucket["output_tokens"].append(float(row.output_tokens or 0))
        bucket["output_words"].append(float(row.output_words or 0))
        bucket["repetition"].append(float(row.repetition or 0))
        bucket["decode_s"].append(float(row.decode_s or 0))
        per_task[row.method][f"{row.task}/s{row.seed}/t{row.turn}"] = round(100.0 * row.score, 2)

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    table = {
        method: {name: _round(mean(values)) for name, values in cols.items()} | {"n": len(cols["score"])}
        for method, cols in columns.items()
    }
    full = table.get("full")
    differences = {d.other: d for d in method_differences(rows, "full") if d.length is not None}
    for method, stats in table.items():
        stats["scores"] = per_task[method]
        if full is None or method == "full":
            continue
        stats["kv_fraction_of_full"] = (
            round(stats["kv_bytes"] / full["kv_bytes"], 3) if full["kv_bytes"] else None
        )
        stats["score_fraction_of_full"] = round(stats["score"] / full["score"], 3) if full["score"] else None
        paired = differences.get(method)
        if paired is not None:
            stats["paired"] = {
                "difference_points": None if paired.difference is None else round(paired.difference, 2),
                "low": None if paired.low is None else round(paired.low, 2),
                "high": None if paired.high is None else round(paired.high, 2),
                "test": paired.test,
                "n": paired.n,
                "sentence": paired.sentence(),
            }
    result = {
        "model": "smollm2 (bundled SmolLM2-135M-Instruct, in-process)",
        "length": config.lengths,
        "tasks": config.tasks,
        "samples_per_task": args.samples,
        "methods": table,
        "note": "kv_bytes: bytes of the key and value tensors held when the answer ended (context, question "
        "and answer); a decoding press caps them at target_size entries per layer and head while it writes. "
        "Scores are rule-scored (0-100); with one sample per task the paired intervals are unavailable and the "
        "differences are indicative only.",
        "wall_s": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "shared_machine": True,
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "long_output_kv.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    main()

"""Accuracy against KV-cache bytes for every long-context method at 4k on the quick suite, bundled model.

Usage: .venv/bin/python bench/methods_kv.py [--lengths 4k] [--methods full,snapkv:0.5,...] [--samples 1]
Writes bench/results/methods_kv.json and bench/results/methods_kv.png (accuracy against mean KV bytes held, one
point per method, `full`'s score drawn as the reference line). Target: at half of full's KV bytes or less, the
best method keeps at least 95% of full's score. All methods run in one process over the same samples, so the
figures are side by side; the run directory is kept under bench/results/methods_kv_run (rerun resumes it).
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
DEFAULT_METHODS = (
    "full,snapkv:0.5,streaming-llm:0.5,expected-attention:0.5,knorm:0.5,tova:0.5,pyramidkv:0.5,"
    "squeezed:0.5,lambda:0.5,int8,int4"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="4k")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args()

    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import RunStore
    from longscope.suites import load_suite
    from longscope.tasks import TASKS

    suite = load_suite("quick", list(TASKS))
    out = HERE / "results" / "methods_kv_run"
    config = RunConfig(
        model="smollm2",
        suite="quick",
        tasks=list(suite.tasks),
        lengths=parse_lengths(args.lengths),
        depths=list(suite.depths) or [0.5],
        samples=args.samples,
        methods=split_list(args.methods),
    )
    started = time.perf_counter()
    run(config, out, show_progress=True)
    wall = time.perf_counter() - started
    store = RunStore.open(out, create=False)
    rows = store.results()
    store.close()

    per_method: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.status != "ok" or row.score is None:
            continue
        bucket = per_method[row.method]
        bucket["score"].append(100.0 * row.score)
        bucket["kv_bytes"].append(float(row.kv_bytes or 0))
        bucket["prefill_s"].append(float(row.prefill_s or 0))
        if row.decode_s and row.output_tokens:
            bucket["decode_tok_s"].append(row.output_tokens / row.decode_s)
        bucket["removed"].append(float(row.kv_removed or 0))
        bucket["masked"].append(float(row.kv_masked or 0))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    table = {
        method: {name: round(mean(values), 3) for name, values in columns.items()}
        | {"n": len(columns["score"])}
        for method, columns in per_method.items()
    }
    full = table.get("full")
    best = None
    if full:
        for method, stats in table.items():
            stats["kv_fraction_of_full"] = round(stats["kv_bytes"] / full["kv_bytes"], 3)
            stats["score_fraction_of_full"] = (
                round(stats["score"] / full["score"], 3) if full["score"] else None
            )
            if (
                method != "full"
                and stats["kv_fraction_of_full"] <= 0.5
                and stats["score_fraction_of_full"] is not None
            ) and (best is None or stats["score_fraction_of_full"] > table[best]["score_fraction_of_full"]):
                best = method
    result = {
        "lengths": config.lengths,
        "tasks": config.tasks,
        "methods": table,
        "best_at_half_kv_or_less": best,
        "best_score_fraction_of_full": table[best]["score_fraction_of_full"] if best else None,
        "target_score_fraction_of_full": 0.95,
        "wall_s": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "methods_kv.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(table, HERE / "results" / "methods_kv.png")
    print(json.dumps(result, indent=2))


def _plot(table: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, stats in sorted(table.items()):
        ax.scatter(stats["kv_bytes"] / 2**20, stats["score"], s=30)
        ax.annotate(method, (stats["kv_bytes"] / 2**20, stats["score"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    if "full" in table:
        ax.axhline(table["full"]["score"], color="grey", linestyle="--", linewidth=1, label="full")
        ax.axhline(
            0.95 * table["full"]["score"], color="grey", linestyle=":", linewidth=1, label="95% of full"
        )
        ax.axvline(table["full"]["kv_bytes"] / 2**21, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("mean KV-cache bytes held (MiB)")
    ax.set_ylabel("mean score (0-100)")
    ax.set_title("Accuracy against KV size, quick suite, SmolLM2-135M")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

"""Reading past the trained window for free: NIAH score by length under each position-extension method, paired
against Λ-attention, beside the loss-by-position curves of the same methods (bundled model, 8k window).

Usage: .venv/bin/python bench/position_extension.py [--lengths 8k,12k,16k] [--samples 5] [--probe-samples 2]
Writes bench/results/position_extension.json (or --out): per method and length the mean score and n, every
method's paired difference against ``lambda`` per length (interval and test), and the probe's NLL-by-position
curves with and without each method. The run directory is kept beside it (rerun resumes). On CPU a 16k prefill
of the bundled model takes minutes, so the full grid is a GPU job; --samples 1 --tasks niah is the short form.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
NIAH_TASKS = (
    "niah(haystack=noise);niah;niah(value_type=uuid);niah_multikey;niah_multikey(haystack=needles);"
    "niah_multivalue;niah_multiquery"
)
METHODS = "lambda,pi(factor=2),ntk(factor=2),yarn(factor=2),self-extend(factor=4,window=1024)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="8k,12k,16k")
    parser.add_argument("--tasks", default=NIAH_TASKS, help="';'-separated task specs")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--probe-samples", type=int, default=2)
    parser.add_argument("--bin", type=int, default=512)
    parser.add_argument("--out", default=str(HERE / "results" / "position_extension.json"))
    args = parser.parse_args()

    from longscope.analysis.paired import method_differences
    from longscope.backends import resolve
    from longscope.methods import parse_methods
    from longscope.probe import probe
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths, split_list
    from longscope.store import RunStore

    target = Path(args.out)
    run_dir = target.parent / f"{target.stem}_run"
    lengths = parse_lengths(args.lengths)
    methods = split_list(args.methods)
    config = RunConfig(
        model="smollm2",
        suite=None,
        tasks=[task for task in args.tasks.split(";") if task],
        lengths=lengths,
        depths=[0.5],
        samples=args.samples,
        methods=methods,
    )
    started = time.perf_counter()
    run(config, run_dir, show_progress=True)
    run_wall = time.perf_counter() - started
    store = RunStore.open(run_dir, create=False)
    rows = store.results()
    store.close()

    scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.status == "ok" and row.score is not None:
            scores[row.method][row.length].append(100.0 * row.score)
    # Λ-attention is the reference: the method that already read past the window before these.
    paired = [vars(d) for d in method_differences(rows, reference="lambda") if d.length is not None]

    started = time.perf_counter()
    backend = resolve("smollm2")
    curves = probe(backend, lengths, parse_methods("full," + args.methods), args.probe_samples, args.bin)
    probe_wall = time.perf_counter() - started

    result = {
        "bench": "position_extension",
        "model": backend.model_name,
        "trained_window": backend.context_window,
        "lengths": lengths,
        "tasks": config.tasks,
        "samples": args.samples,
        "machine": platform.platform(),
        "run_wall_s": round(run_wall, 1),
        "probe_wall_s": round(probe_wall, 1),
        "scores": {
            method: {str(length): {"mean": sum(v) / len(v), "n": len(v)} for length, v in sorted(by.items())}
            for method, by in scores.items()
        },
        "paired_against_lambda": paired,
        "probe": [curve.as_dict() for curve in curves],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1))
    for method, by in sorted(result["scores"].items()):
        print(method, {length: round(v["mean"], 1) for length, v in by.items()})
    for curve in curves:
        print(f"probe {curve.method} {curve.length}: mean NLL {curve.mean:.3f}")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

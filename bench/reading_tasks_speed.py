"""Times building one 128k-token sample of each harder reading task (issue 22) with the test suite's tiny tokenizer.

Usage: .venv/bin/python bench/reading_tasks_speed.py [--samples 3]
Writes bench/results/reading_tasks_speed.json: per task, the first sample (cold: unit counts not yet known)
and the mean of the next ones (warm, as in a run of many seeds), beside niah in the same sitting for scale.
The machine may be shared: the load average at the start and end is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

LENGTH = 128 * 1024
SPECS = (
    "niah",
    "latent_needles",
    "ladder_multikey(level=hard)",
    "ladder_multivalue(level=hard)",
    "ladder_qa(level=hard)",
    "ladder_solve(level=hard)",
    "mrcr(rounds=4)",
    "gsm_graph(ops=8)",
    "span_finding(variant=multi)",
    "span_finding(variant=global)",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=3, help="warm samples per task after the first")
    args = parser.parse_args()
    from conftest import tiny_tokenizer

    from longscope.backends.hf import HFTokenizer
    from longscope.tasks import make_task

    backend = HFTokenizer(tiny_tokenizer("chatml", "bytelevel"), name="tiny-chatml-bytelevel")
    load_before = os.getloadavg()
    rows = []
    for spec in SPECS:
        task = make_task(spec)
        depth = 0.5 if task.uses_depth else None
        started = time.perf_counter()
        first = task.build(backend, LENGTH, depth, 0)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        for seed in range(1, args.samples + 1):
            sample = task.build(backend, LENGTH, depth, seed)
            assert sample.metadata["realised_tokens"] == LENGTH
        warm = (time.perf_counter() - started) / args.samples
        assert first.metadata["realised_tokens"] == LENGTH
        rows.append({"task": spec, "cold_s": round(cold, 3), "warm_s_per_sample": round(warm, 3)})
        print(f"{spec:34s} cold {cold:6.2f} s   warm {warm:6.3f} s/sample")
    result = {
        "length": LENGTH,
        "tokenizer": "tests/conftest.py tiny_tokenizer(chatml, bytelevel)",
        "warm_samples": args.samples,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    out = HERE / "results" / "reading_tasks_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Shared context: five questions over one 4k context, `independent` against `multi-request`, method `full`.

Usage: .venv/bin/python bench/sessions.py [--task 'niah_multikey(questions=5)'] [--length 4k] [--samples 1]
Writes bench/results/sessions.json. Both modes run in this one process on the bundled model over the same
samples: wall time of each, the speed-up (target: multi-request at least 3.5× faster), and whether every turn's
answer is the same (the exact prefix-reuse baseline should not change a greedy answer).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="niah_multikey(questions=5)")
    parser.add_argument("--length", default="4k")
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args()

    from longscope.backends import resolve
    from longscope.runner import RunConfig, run
    from longscope.spec import parse_lengths
    from longscope.store import RunStore

    backend = resolve("smollm2")
    lengths = parse_lengths(args.length)
    timings: dict[str, float] = {}
    answers: dict[str, dict[str, str]] = {}
    scores: dict[str, float] = {}
    parts: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        # Build the samples once, untimed, so neither mode pays for building them.
        warm = RunConfig(
            model="smollm2", tasks=[args.task], lengths=lengths, samples=args.samples, depths=[0.5]
        )
        from longscope.tasks import cached_sample, make_task

        task = make_task(args.task)
        for seed in range(args.samples):
            cached_sample(task, backend, lengths[0], 0.5 if task.uses_depth else None, seed)
        for mode in ("independent", "multi-request"):
            config = RunConfig(**{**warm.__dict__, "mode": mode})
            out = Path(scratch) / mode
            started = time.perf_counter()
            run(config, out, backend=backend, show_progress=False)
            timings[mode] = time.perf_counter() - started
            store = RunStore.open(out, create=False)
            rows = store.results()
            store.close()
            answers[mode] = {f"{r.sample_id}#t{r.turn}": r.prediction for r in rows}
            parts[mode] = {
                "prefill_s": round(sum(r.prefill_s or 0 for r in rows), 1),
                "decode_s": round(sum(r.decode_s or 0 for r in rows), 1),
                "output_tokens": sum(r.output_tokens or 0 for r in rows),
            }
            done = [r.score for r in rows if r.score is not None]
            scores[mode] = round(100.0 * sum(done) / len(done), 1) if done else float("nan")
    same = sum(answers["independent"][k] == answers["multi-request"].get(k) for k in answers["independent"])
    result = {
        "task": args.task,
        "length": lengths[0],
        "samples": args.samples,
        "turns": len(answers["independent"]),
        "independent_s": round(timings["independent"], 1),
        "multi_request_s": round(timings["multi-request"], 1),
        "speedup": round(timings["independent"] / timings["multi-request"], 2),
        "target_speedup": 3.5,
        "same_answers": f"{same}/{len(answers['independent'])}",
        # Prefill is what sharing the context saves; decoding the answers costs the same in both modes, so
        # the speed-up is bounded by how long the answers are.
        "independent_parts": parts["independent"],
        "multi_request_parts": parts["multi-request"],
        "score_independent": scores["independent"],
        "score_multi_request": scores["multi-request"],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "sessions.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

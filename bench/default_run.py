"""Times the default `longscope run` and the bundled model's first (converting) and second (cached) loads.

Usage: .venv/bin/python bench/default_run.py   (writes bench/results/default_run.json)
The targets: the default run finishes in under 6 minutes on 2 CPU cores, and at each length its mean over tasks
has an interval no wider than +-15 points; the second load takes seconds. Also recorded: scored questions per
second (before the shared-context default: 18 questions in 148.5 s, 0.121 per second, bench results of
2026-11-23) and the prompt tokens the shared prefill saved.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(code: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "LONGSCOPE_CACHE": str(Path(scratch) / "cache")}
        load = "from longscope.backends import smollm2; smollm2.load()"
        first_load = timed(load, env)  # converts the GGUF into the fresh cache
        second_load = timed(load, env)
        out = Path(scratch) / "run"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from longscope.cli import main; main()", "run", "--out", str(out),
                        "--no-progress"], check=True, env=env)  # fmt: skip
        default_run = time.perf_counter() - started
        summary = json.loads((out / "summary.json").read_text())
        import sqlite3

        with sqlite3.connect(out / "run.db") as db:
            scored, reused, prompt = db.execute(
                "SELECT COUNT(*), SUM(reused_tokens), SUM(input_tokens) FROM results WHERE status = 'ok'"
            ).fetchone()
    per_length = {
        str(cell["length"]): {
            "mean": round(cell["mean"], 1),
            "n": cell["n"],
            "interval": [round(cell["low"], 1), round(cell["high"], 1)] if cell["low"] is not None else None,
            "half_width": round((cell["high"] - cell["low"]) / 2, 1) if cell["low"] is not None else None,
            "kind": cell["interval"],
        }
        for cell in summary["overall"]
    }
    result = {
        "first_load_s (convert + load, includes interpreter start)": round(first_load, 1),
        "second_load_s (cached, includes interpreter start)": round(second_load, 1),
        "default_run_s (model cached, fresh run dir)": round(default_run, 1),
        "target_default_run_s": 360,
        "scored_questions": scored,
        "scored_questions_per_s": round(scored / default_run, 3),
        "scored_questions_per_s_before": round(18 / 148.5, 3),
        "prompt_tokens_reused_from_shared_prefill": reused,
        "prompt_tokens_sent": prompt,
        "mean_over_tasks_by_length": per_length,
        "target_half_width": 15,
        "effective_length": summary["effective_length"].get("label"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "default_run.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

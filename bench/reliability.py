"""Crash and resume: kill -9 a real `longscope run` at random moments, resume it each time, and count what was lost.

Usage: .venv/bin/python bench/reliability.py [--model hf:DIR|smollm2] [--trials 20] [--seed 25]
(writes the "crash_and_resume" section of bench/results/reliability.json; targets: 0 lost, 0 duplicated).
tests/reliability/test_crash_resume.py runs the same code on a tiny model. Kill moments are drawn uniformly
from the time an uninterrupted run takes, so they land in model load, sample building, prefill, store writes,
between samples and in the report, in proportion to how long each lasts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "reliability.json"
TASKS = "niah(max_new_tokens=4),niah_multikey(max_new_tokens=4)"


def command(model: str, out_dir: Path) -> list[str]:
    return [
        sys.executable, "-c", "from longscope.cli import main; main()", "run", "--model", model,
        "--tasks", TASKS, "--lengths", "384,512", "--samples", "3", "--no-progress", "--measure-plane", "none",
        "--out", str(out_dir),
    ]  # fmt: skip


def rows(out_dir: Path) -> tuple[list[str], str]:
    """The stored result keys (with repeats, if any) and the database's integrity check."""
    path = out_dir / "run.db"
    if not path.exists():
        return [], "ok"
    with sqlite3.connect(path) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM results WHERE status='ok'")]
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    return keys, check


def crash_and_resume(
    model: str, workdir: Path, *, trials: int = 20, seed: int = 25, env: dict | None = None
) -> dict:
    """Run once uninterrupted (the plan and its duration), then into a fresh directory: ``trials`` times start,
    kill -9 at a random moment, check the database; finally resume to the end. Figures of what happened."""
    environment = {**os.environ, **(env or {})}
    reference = workdir / "reference"
    subprocess.run(command(model, reference), env=environment, check=True, capture_output=True, timeout=900)
    planned = sorted(rows(reference)[0])
    # Timed on a second fresh run, whose samples come from the cache the first one filled, as the trials' do:
    # timed on the cold run, most kills would land after the trial's run had already finished.
    started = time.monotonic()
    timed = workdir / "reference-warm"
    subprocess.run(command(model, timed), env=environment, check=True, capture_output=True, timeout=900)
    full_s = time.monotonic() - started

    rng = random.Random(seed)
    # When a trial's run got to the end before its kill, the next trial starts over in a fresh directory, so
    # that every kill can land in real work rather than in the resume of a finished run.
    directories = [workdir / "crashed-0"]
    killed_alive = checks_failed = 0
    rows_before: list[int] = []
    for _ in range(trials):
        target = directories[-1]
        process = subprocess.Popen(
            command(model, target), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.0, full_s))
        if process.poll() is None:
            killed_alive += 1
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        keys, check = rows(target)
        rows_before.append(len(keys))
        checks_failed += check != "ok"
        if sorted(keys) == planned:
            directories.append(workdir / f"crashed-{len(directories)}")
    finished = subprocess.run(
        command(model, directories[-1]), env=environment, capture_output=True, timeout=900
    )
    lost = duplicated = unplanned = 0
    for directory in directories:
        keys, check = rows(directory)
        lost += len(set(planned) - set(keys))
        duplicated += len(keys) - len(set(keys))
        unplanned += len(set(keys) - set(planned))
        checks_failed += check != "ok"
    return {
        "trials": trials,
        "killed_while_running": killed_alive,
        "uninterrupted_run_s": round(full_s, 1),
        "planned_rows": len(planned),
        "run_directories": len(directories),
        "rows_done_at_each_kill": rows_before,
        "lost_rows": lost,
        "duplicated_rows": duplicated,
        "unplanned_rows": unplanned,
        "integrity_check_failures": checks_failed,
        "resume_exit_code": finished.returncode,
    }


def record(section: str, figures: dict, path: Path = RESULTS) -> None:
    """Write ``figures`` under ``section`` of the results file, keeping its other sections."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    existing[section] = {
        **figures,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": "shared by other work: durations are indicative, the counts are what matters",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {"LONGSCOPE_CACHE": str(Path(folder) / "cache")}
        figures = crash_and_resume(args.model, Path(folder), trials=args.trials, seed=args.seed, env=env)
    record("crash_and_resume", {**figures, "model": args.model})
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Crash and resume: kill -9 a real `longscope run` at named points, resume it each time, and count what was lost.

Usage: .venv/bin/python bench/reliability.py [--model tiny|smollm2|hf:DIR] [--trials 20] [--seed 25]
(writes the "crash_and_resume" section of bench/results/reliability.json; targets: 0 lost, 0 duplicated, every
kill landed where it was aimed). tests/reliability/test_crash_resume.py runs the same code on a tiny model.

Each trial aims at one of the five points of `longscope.trace` in turn (model load, prefill, a store write inside
its transaction, between samples, the report), at a seeded random occurrence among those the run still has
ahead. The child writes a trace line as it reaches each point and waits at the aimed one; the SIGKILL is sent from
here on seeing that line, so the trace proves where it landed: the process was alive and its last line is the
aimed point. The rows committed at that moment are checked against the count the point implies.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from longscope import trace

RESULTS = Path(__file__).resolve().parent / "results" / "reliability.json"
TASKS = "niah(max_new_tokens=4),niah_multikey(max_new_tokens=4)"
# Points that come once per sample (single-turn tasks: one request, one row, one sample each); the others once
# per run.
PER_SAMPLE = ("prefill", "store-write", "sample-done")


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


def rows_expected_at(point: str, occurrence: int, done_before: int, planned: int) -> int:
    """How many rows a run that started with ``done_before`` has committed when it stands at ``point``."""
    if point == "model-load":
        return done_before
    if point == "report":
        return planned
    if point == "sample-done":  # the occurrence-th sample's row is committed
        return done_before + occurrence
    return done_before + occurrence - 1  # prefill, or a store write whose transaction is still open


def kill_at(
    argv: list[str], environment: dict, trace_file: Path, point: str, occurrence: int, timeout: float = 600
) -> dict:
    """Start ``argv``, SIGKILL it when its trace shows ``point`` for the ``occurrence``-th time, and say where
    the kill landed: whether the process was still alive, and the last point its trace had reached."""
    trace_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        argv,
        env={
            **environment,
            trace.TRACE_VARIABLE: str(trace_file),
            trace.HOLD_VARIABLE: f"{point}:{occurrence}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if any(event[:2] == (point, occurrence) for event in trace.read(trace_file)):
            break
        time.sleep(0.01)
    alive = process.poll() is None
    process.kill()
    process.wait(timeout=60)
    events = trace.read(trace_file)
    last = events[-1][:2] if events else None
    return {"alive": alive, "last": last, "landed": alive and last == (point, occurrence)}


def crash_and_resume(
    model: str, workdir: Path, *, trials: int = 20, seed: int = 25, env: dict | None = None
) -> dict:
    """Run once uninterrupted (the plan, and how often each point comes), then ``trials`` times start a run,
    kill -9 it at the trial's point, check the database; finally resume to the end. Figures of what happened,
    in all and per point."""
    environment = {**os.environ, **(env or {})}
    environment.pop(trace.HOLD_VARIABLE, None)
    reference = workdir / "reference"
    reference_trace = workdir / "reference.trace"
    subprocess.run(
        command(model, reference),
        env={**environment, trace.TRACE_VARIABLE: str(reference_trace)},
        check=True,
        capture_output=True,
        timeout=1800,
    )
    planned = sorted(rows(reference)[0])
    counts = {point: 0 for point in trace.POINTS}
    for name, _, _ in trace.read(reference_trace):
        counts[name] += 1
    if any(counts[point] != len(planned) for point in PER_SAMPLE) or counts["model-load"] != 1:
        raise RuntimeError(
            f"the plan must be single-turn, one row per sample: {counts} for {len(planned)} rows"
        )

    rng = random.Random(seed)
    directories = [workdir / "crashed-0"]
    per_trial = []
    started = time.monotonic()
    for number in range(trials):
        point = trace.POINTS[number % len(trace.POINTS)]
        done_before = len(rows(directories[-1])[0])
        if done_before == len(planned):  # nothing left to interrupt: aim at a fresh run
            directories.append(workdir / f"crashed-{len(directories)}")
            done_before = 0
        target = directories[-1]
        occurrence = rng.randint(1, len(planned) - done_before) if point in PER_SAMPLE else 1
        kill = kill_at(
            command(model, target), environment, workdir / f"trial-{number}.trace", point, occurrence
        )
        keys, check = rows(target)
        report = target / "report.html"
        per_trial.append({
            "point": point,
            "occurrence": occurrence,
            "directory": target.name,
            "alive": kill["alive"],
            "landed": kill["landed"],
            "rows_before": done_before,
            "rows_at_kill": len(keys),
            "rows_as_expected": len(keys) == rows_expected_at(point, occurrence, done_before, len(planned)),
            "keys": set(keys),
            "duplicated": len(keys) - len(set(keys)),
            "unplanned": len(set(keys) - set(planned)),
            "integrity_ok": check == "ok",
            # The report is written whole or not at all: a kill in the middle leaves no half page.
            "partial_report": report.exists() and not report.read_text(errors="replace").rstrip().endswith("</html>"),
        })  # fmt: skip
    kills_s = time.monotonic() - started
    finished = subprocess.run(
        command(model, directories[-1]), env=environment, capture_output=True, timeout=1800
    )
    final = {directory.name: rows(directory) for directory in directories}
    for trial in per_trial:  # a row committed before a kill that is gone after the resumes was lost by it
        trial["lost"] = len(trial.pop("keys") - set(final[trial["directory"]][0]))
    lost = duplicated = unplanned = integrity_failures = 0
    for keys, check in final.values():
        lost += len(set(planned) - set(keys))
        duplicated += len(keys) - len(set(keys))
        unplanned += len(set(keys) - set(planned))
        integrity_failures += check != "ok"
    by_point = {}
    for point in trace.POINTS:
        mine = [trial for trial in per_trial if trial["point"] == point]
        by_point[point] = {
            "trials": len(mine),
            "killed_while_running": sum(trial["alive"] for trial in mine),
            "landed_at_aimed_point": sum(trial["landed"] for trial in mine),
            "rows_at_kill_as_expected": sum(trial["rows_as_expected"] for trial in mine),
            "lost_rows": sum(trial["lost"] for trial in mine),
            "duplicated_rows": sum(trial["duplicated"] for trial in mine),
            "unplanned_rows": sum(trial["unplanned"] for trial in mine),
            "integrity_check_failures": sum(not trial["integrity_ok"] for trial in mine),
            "partial_reports": sum(trial["partial_report"] for trial in mine),
        }
    return {
        "trials": trials,
        "killed_while_running": sum(trial["alive"] for trial in per_trial),
        "landed_at_aimed_point": sum(trial["landed"] for trial in per_trial),
        "planned_rows": len(planned),
        "run_directories": len(directories),
        "by_point": by_point,
        "each_kill": [
            {key: trial[key] for key in ("point", "occurrence", "landed", "rows_before", "rows_at_kill")}
            for trial in per_trial
        ],
        "lost_rows": lost + sum(trial["lost"] for trial in per_trial),
        "duplicated_rows": duplicated + sum(trial["duplicated"] for trial in per_trial),
        "unplanned_rows": unplanned + sum(trial["unplanned"] for trial in per_trial),
        "integrity_check_failures": integrity_failures
        + sum(not trial["integrity_ok"] for trial in per_trial),
        "resume_exit_code": finished.returncode,
        "trials_wall_s": round(kills_s, 1),
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


def _tiny_model(folder: Path) -> str:
    """The tiny random Llama of the test suite, saved as a checkpoint: what bounds a trial is the process, not
    the model, and this keeps 20 of them cheap."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import tiny_llama, tiny_tokenizer

    tokenizer = tiny_tokenizer("chatml")
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"hf:{folder}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="tiny", help="a model URI, or tiny: the tiny random Llama the test suite builds"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    # The kills are aimed by the trace, not timed, so the usual cache (converted weights, samples) serves.
    with tempfile.TemporaryDirectory() as folder:
        model = _tiny_model(Path(folder) / "tiny-llama") if args.model == "tiny" else args.model
        figures = crash_and_resume(model, Path(folder), trials=args.trials, seed=args.seed)
    label = "tiny random llama (hf:DIR, tests/conftest.py)" if args.model == "tiny" else args.model
    record("crash_and_resume", {**figures, "model": label})
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

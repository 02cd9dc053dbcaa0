"""Times the default `longscope run` and the bundled model's first (converting) and second (cached) loads.

Usage: .venv/bin/python bench/default_run.py   (writes bench/results/default_run.json)
The target: the default run finishes in under 6 minutes on 2 CPU cores; the second load takes seconds.
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
    result = {
        "first_load_s (convert + load, includes interpreter start)": round(first_load, 1),
        "second_load_s (cached, includes interpreter start)": round(second_load, 1),
        "default_run_s (model cached, fresh run dir)": round(default_run, 1),
        "target_default_run_s": 360,
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

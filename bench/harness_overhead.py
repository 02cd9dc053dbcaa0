"""Harness overhead of the default run: the share of wall time not spent inside the backend's generate.

Usage: .venv/bin/python bench/harness_overhead.py   (writes bench/results/harness_overhead.json; target < 3%)
The model is loaded first and not counted: the overhead is planning, sample building (cold sample cache),
scoring, the store's writes and the progress bar, measured against the generate calls themselves.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class TimedBackend:
    """Wraps a backend and adds up the wall time spent inside generate."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.inside = 0.0
        for name in ("kind", "model_name", "model_revision", "context_window"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        started = time.perf_counter()
        try:
            return self.inner.generate(request)
        finally:
            self.inside += time.perf_counter() - started


def main() -> None:
    from longscope.backends import resolve
    from longscope.runner import RunConfig, run
    from longscope.suites import BUILTIN

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["LONGSCOPE_CACHE"] = str(Path(scratch) / "cache")  # cold sample cache: building counts
        backend = TimedBackend(resolve("smollm2"))
        quick = BUILTIN["quick"]
        config = RunConfig(
            model="smollm2",
            suite="quick",
            tasks=list(quick.tasks),
            lengths=[1024, 2048, 4096],
            depths=list(quick.depths),
            samples=quick.samples or 1,
        )
        started = time.perf_counter()
        run(config, Path(scratch) / "run", backend=backend, show_progress=True)
        total = time.perf_counter() - started
    overhead = total - backend.inside
    result = {
        "total_s": round(total, 2),
        "inside_backend_s": round(backend.inside, 2),
        "overhead_s": round(overhead, 2),
        "overhead_share_percent": round(100 * overhead / total, 2),
        "target_percent": 3,
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "harness_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

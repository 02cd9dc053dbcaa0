"""The reliability bench script (bench/reliability.py), loaded for the tests that share its code and its
results file (bench/results/reliability.json)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "bench" / "reliability.py"
_spec = importlib.util.spec_from_file_location("bench_reliability", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

record = bench.record
crash_and_resume = bench.crash_and_resume

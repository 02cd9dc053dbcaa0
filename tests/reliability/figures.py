"""Figures of the reliability suite, merged section by section into bench/results/reliability.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"


def record(section: str, figures: dict, path: Path = RESULTS) -> None:
    """Write ``figures`` under ``section``, keeping the other sections' last figures."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    existing[section] = {
        **figures,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": f"{platform.machine()}, shared by other work (figures are counts, not timings)",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")

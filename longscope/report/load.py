"""Read a run directory for reporting: its result rows, sample metadata and answers, configuration and state."""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longscope.analysis.scores import as_series
from longscope.core import Result, UsageError
from longscope.store import DB_NAME, RunStore


@dataclass
class RunData:
    run_dir: Path
    results: list[Result]  # as stored; the score tables label them by series themselves
    metadata: dict[str, dict[str, Any]]
    answers: dict[str, list[list[str]]]  # gold answers of each turn, by sample id
    config: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    state: str | None = None
    # The run configuration of each `longscope run` that wrote rows here, in order; a run from before several
    # invocations were recorded has its one configuration.
    invocations: list[dict[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def series(self) -> list[Result]:
        """The rows with their task named as their series (mode and turn where not the default; methods have
        their own tables): what the per-row analyses group by."""
        return as_series(self.results, with_method=False)

    @property
    def in_progress(self) -> bool:
        """A run that is still going, or that was stopped before it finished: its state stays "running"."""
        return self.state == "running"

    @property
    def label(self) -> str:
        return self.run_dir.name or str(self.run_dir)


def check_run_dir(run_dir: Path) -> Path:
    """One clear line for a path that cannot be a run, before SQLite is asked anything."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UsageError(f"{run_dir} does not exist; give a run directory (the --out of `longscope run`)")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory; give the --out directory of a run")
    if not (run_dir / DB_NAME).is_file():
        raise UsageError(
            f"{run_dir} is not a longscope run (no {DB_NAME}); give the --out directory of a run"
        )
    return run_dir


def _samples(store: RunStore) -> tuple[dict[str, dict], dict[str, list[list[str]]]]:
    """Metadata and answers of every sample, extracted by SQLite so that long contexts are never parsed here."""
    try:
        rows = store.connection.execute(
            "SELECT id, json_extract(body, '$.metadata'), json_extract(body, '$.turns') FROM samples"
        ).fetchall()
    except sqlite3.OperationalError:  # an SQLite without JSON functions: parse the bodies instead
        rows = [
            (r[0], json.dumps(b.get("metadata", {})), json.dumps(b.get("turns", [])))
            for r in store.connection.execute("SELECT id, body FROM samples")
            for b in [json.loads(r[1])]
        ]
    metadata, answers = {}, {}
    for sample_id, meta, turns in rows:
        metadata[sample_id] = json.loads(meta) if meta else {}
        answers[sample_id] = [
            [a for a in t.get("answers", []) if not a.startswith(_OLD_FORBIDDEN)]
            for t in (json.loads(turns) if turns else [])
        ]
    return metadata, answers


# Runs stored before turns had their own ``forbidden`` values kept the false values among the answers behind
# this marker (``Sample.from_json`` reads them so too); they are not gold and are not shown as gold.
_OLD_FORBIDDEN = "!forbidden:"


def load_run(run_dir: Path) -> RunData:
    """Everything a report needs from one run directory; the store is only read."""
    run_dir = check_run_dir(run_dir)
    store = RunStore.open(run_dir, create=False)
    try:
        results = store.results()
        metadata, answers = _samples(store)
        config = store.get_meta("config") or {}
        config = config if isinstance(config, dict) else {}
        invocations = store.get_meta("invocations")
        if not isinstance(invocations, list) or not invocations:
            invocations = [config] if config else []
        return RunData(
            run_dir=run_dir,
            results=results,
            metadata=metadata,
            answers=answers,
            config=config,
            model=store.get_meta("model"),
            state=store.get_meta("state"),
            invocations=[i for i in invocations if isinstance(i, dict)],
        )
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"cannot read the run in {run_dir}: {exc}") from None
    finally:
        store.close()

"""The run store: one SQLite database per run directory, a row written as each sample finishes."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from longscope import trace
from longscope.core import Result, Sample, UsageError
from longscope.redact import redact, redact_value

DB_NAME = "run.db"
# PRAGMA application_id marks the file as ours, so a foreign SQLite file is never written to.
APPLICATION_ID = 0x4C53_4350  # "LSCP"
SCHEMA_VERSION = 1

_RESULT_COLUMNS = [f.name for f in dataclasses.fields(Result)]
_SQL_TYPES = {"int": "INTEGER", "float": "REAL", "str": "TEXT"}


def _column_type(field: dataclasses.Field) -> str:
    text = str(field.type)
    for py, sql in _SQL_TYPES.items():
        if text.startswith(py):
            return sql
    return "TEXT"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (id TEXT PRIMARY KEY, task TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    {", ".join(f"{f.name} {_column_type(f)}" for f in dataclasses.fields(Result))},
    finished_at REAL NOT NULL,
    PRIMARY KEY (key)
);
"""


# What every longscope run database holds, whatever version wrote it (newer versions only add columns).
_REQUIRED_COLUMNS = {
    "meta": {"key", "value"},
    "samples": {"id", "task", "body"},
    "results": {"key", "sample_id", "status", "finished_at"},
}
_HEADER = b"SQLite format 3\x00"


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _read_uri(path: Path) -> str:
    """How to open ``path`` for reading without creating anything beside it. With no -wal file there is no
    writer and nothing uncommitted, so the file is opened as immutable (no -shm or -wal is made, and a
    read-only directory is no obstacle); with one, read-only through the WAL, which holds the newest rows."""
    quoted = urllib.parse.quote(str(path.resolve()))
    return f"file:{quoted}?mode=ro" if _wal(path).exists() else f"file:{quoted}?immutable=1"


def _check_header(path: Path) -> None:
    """Refuse a file whose first page shows it is not SQLite, or that is shorter than its header says."""
    corrupt = f"{path} is corrupt or not an SQLite database"
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(header) < 100 or not header.startswith(_HEADER):
        raise UsageError(f"{corrupt}; move it away or choose another --out") from None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid only when its version number matches the change counter.
    counted = header[92:96] == header[24:28] and pages > 0
    size = path.stat().st_size
    if size % page_size or (counted and size < pages * page_size and not _wal(path).exists()):
        raise UsageError(f"{corrupt} (truncated: {size} bytes); move it away or choose another --out")


def _check_existing(path: Path) -> None:
    """Refuse a file that is not a longscope run database, reading it only (it must be left as it was, with
    no -shm or -wal file made beside it)."""
    _check_header(path)
    try:
        probe = sqlite3.connect(_read_uri(path), uri=True)
        try:
            app_id = probe.execute("PRAGMA application_id").fetchone()[0]
            tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            columns = {
                table: {row[1] for row in probe.execute(f"PRAGMA table_info({table})")}
                for table in _REQUIRED_COLUMNS
                if table in tables
            }
            schema = None
            if "key" in columns.get("meta", set()):
                row = probe.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                schema = row[0] if row else None
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(
            f"{path} is corrupt or not an SQLite database ({exc}); move it away or choose another --out"
        ) from None
    if app_id != APPLICATION_ID or not {"meta", "results"} <= tables:
        raise UsageError(
            f"{path} is an SQLite database that longscope did not write; move it away or choose another --out"
        )
    missing = [
        f"{table}.{column}"
        for table, needed in _REQUIRED_COLUMNS.items()
        for column in sorted(needed - columns.get(table, needed if table == "samples" else set()))
    ]
    if missing:
        raise UsageError(
            f"{path} is marked as a longscope run but lacks {', '.join(missing)}; it is damaged or was edited "
            "by hand: move it away or choose another --out"
        )
    if schema is not None and (not str(schema).isdigit() or int(schema) > SCHEMA_VERSION):
        raise UsageError(
            f"{path} has run schema {schema!r}, which this longscope (schema {SCHEMA_VERSION}) cannot read; "
            "upgrade longscope or choose another --out"
        )


def _check_writable(run_dir: Path) -> None:
    """Refuse, in words, a run directory (or database) this process may read but not write."""
    targets = [run_dir, *(p for p in (run_dir / DB_NAME, _wal(run_dir / DB_NAME)) if p.exists())]
    for target in targets:
        if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)):
            raise UsageError(
                f"cannot write to {target}: it is read-only; `longscope show` and `longscope report` still read "
                "it, and a run needs a writable --out (copy it, or choose another)"
            )


class RunStore:
    """Read and write one run directory's database. Every write is its own committed transaction."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    @staticmethod
    def prepare(run_dir: Path) -> tuple[dict[str, Any], set[str]]:
        """Check that ``run_dir`` can hold a run, creating nothing but the directory.

        Returns the metadata and finished result keys of a run already there (empty for a new one).

        Called before any work so that a bad --out fails first, and a failed start leaves no database behind.
        """
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if path.exists():
            _check_existing(path)
            _check_writable(run_dir)
            store = RunStore.open(run_dir, create=False)
            try:
                meta = {row[0]: json.loads(row[1]) for row in store.connection.execute("SELECT * FROM meta")}
                return meta, store.finished_keys()
            finally:
                store.close()
        # Check without creating anything: a run that fails before its first sample leaves no trace.
        existing = run_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(
                f"cannot write to output directory {run_dir}: {existing} is not a directory; choose another --out"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(
                f"cannot write to output directory {run_dir}: permission denied; choose another --out"
            )
        return {}, set()

    @classmethod
    def open(cls, run_dir: Path, *, create: bool) -> RunStore:
        run_dir = Path(run_dir)
        path = run_dir / DB_NAME
        if path.exists():
            _check_existing(path)
        elif not create:
            if not run_dir.is_dir():
                raise UsageError(f"{run_dir} does not exist; give the --out directory of a run")
            raise UsageError(
                f"{run_dir} is not a longscope run (no {DB_NAME}); give the --out directory of a run"
            )
        if create:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(
                    f"cannot write to output directory {run_dir}: {exc.strerror or exc}; choose another --out"
                ) from None
            _check_writable(run_dir)
            connection = sqlite3.connect(path, timeout=30)
        else:
            # Reading needs no write access: `show` and `report` work on a read-only copy of a run.
            connection = sqlite3.connect(_read_uri(path), uri=True, timeout=30)
        connection.row_factory = sqlite3.Row
        if create:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            with connection:
                connection.executescript(_SCHEMA)
                # A run written by an older longscope lacks newer result columns; add them, empty.
                present = {row[1] for row in connection.execute("PRAGMA table_info(results)")}
                for column in dataclasses.fields(Result):
                    if column.name not in present:
                        connection.execute(
                            f"ALTER TABLE results ADD COLUMN {column.name} {_column_type(column)}"
                        )
                connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
                connection.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('created', ?)",
                    (str(SCHEMA_VERSION), str(time.time())),
                )
        return cls(connection, path)

    def close(self) -> None:
        self.connection.close()

    # -- metadata ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.connection.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.connection:
            # The run's configuration names the model URI, which may carry a key: none is ever stored.
            self.connection.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(redact_value(value)))
            )

    # -- results -------------------------------------------------------------------------------------

    def finished_keys(self) -> set[str]:
        return {row[0] for row in self.connection.execute("SELECT key FROM results WHERE status='ok'")}

    def attempts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self.connection.execute("SELECT key, attempts FROM results")}

    def write(self, result: Result, sample: Sample) -> None:
        """Record one finished or failed sample; a retry replaces the earlier failed row for the same key."""
        # An error may quote a server's URL or echo its key; the store never holds either.
        values = [
            redact(value) if name == "error" and value else value
            for name, value in ((name, getattr(result, name)) for name in _RESULT_COLUMNS)
        ]
        with self.connection:
            self.connection.execute(
                "INSERT OR IGNORE INTO samples VALUES (?, ?, ?)", (sample.id, sample.task, sample.to_json())
            )
            self.connection.execute(
                f"INSERT OR REPLACE INTO results ({', '.join(_RESULT_COLUMNS)}, finished_at) "
                f"VALUES ({', '.join('?' * len(_RESULT_COLUMNS))}, ?)",
                [*values, time.time()],
            )
            trace.point("store-write")  # inside the transaction: a kill here must leave no half row

    def results(self) -> list[Result]:
        """Every row, as written (the analyses label them by series: see analysis.scores)."""
        # Read only the columns this run has: one written by an older longscope lacks the newer ones.
        present = {row[1] for row in self.connection.execute("PRAGMA table_info(results)")}
        columns = [name for name in _RESULT_COLUMNS if name in present]
        rows = self.connection.execute(f"SELECT {', '.join(columns)} FROM results ORDER BY rowid")
        return [Result(**dict(row)) for row in rows]

    def sample_metadata(self) -> dict[str, dict[str, Any]]:
        """Each stored sample's metadata by sample id: what breakdowns group by."""
        rows = self.connection.execute("SELECT id, body FROM samples")
        return {row[0]: json.loads(row[1]).get("metadata", {}) for row in rows}

    def sample(self, sample_id: str) -> Sample | None:
        row = self.connection.execute("SELECT body FROM samples WHERE id=?", (sample_id,)).fetchone()
        return None if row is None else Sample.from_json(row[0])

"""The answered rows of a bench's run directory, read and the store closed again (shared by the benches)."""

from __future__ import annotations

from pathlib import Path


def ok_rows(directory: Path) -> list:
    """Every row of the run store in ``directory`` that was answered (status ``ok``)."""
    from longscope.store import RunStore

    store = RunStore.open(directory, create=False)
    try:
        return [row for row in store.results() if row.status == "ok"]
    finally:
        store.close()

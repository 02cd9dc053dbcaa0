"""An opt-in trace of a run's named moments, so that a crash test can aim a kill -9 at one of them and know where
it landed.

Off unless the environment variable ``LONGSCOPE_TRACE`` names a file; then every ``point(name)`` appends one line,
``NAME OCCURRENCE PID``, in a single unbuffered write, so a watcher outside sees it at once and it survives this
process dying the next instant. With ``LONGSCOPE_TRACE_HOLD=NAME:OCCURRENCE`` as well, that one occurrence waits
after writing its line (up to ``HOLD_S``, then goes on), so that a kill sent on seeing the line lands exactly
there rather than wherever the process has got to by the time the signal arrives.

The named points: ``model-load`` (the backend is about to load), ``prefill`` (a request is about to go to the
model), ``store-write`` (a row is inserted and its transaction not yet committed), ``sample-done`` (a sample's rows
are committed, the next not started: between samples) and ``report`` (the report is about to be rendered).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

TRACE_VARIABLE = "LONGSCOPE_TRACE"
HOLD_VARIABLE = "LONGSCOPE_TRACE_HOLD"
POINTS = ("model-load", "prefill", "store-write", "sample-done", "report")
HOLD_S = 120.0

_seen: Counter[str] = Counter()
_lock = threading.Lock()


def point(name: str) -> None:
    """Mark that the process has reached ``name``; nothing at all unless ``LONGSCOPE_TRACE`` is set."""
    path = os.environ.get(TRACE_VARIABLE)
    if not path:
        return
    with _lock:
        _seen[name] += 1
        occurrence = _seen[name]
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{name} {occurrence} {os.getpid()}\n".encode())
    finally:
        os.close(descriptor)
    if os.environ.get(HOLD_VARIABLE) == f"{name}:{occurrence}":
        time.sleep(HOLD_S)


def read(path: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """The events a trace file holds, in order: (name, occurrence, pid)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        name, occurrence, pid = line.split()
        events.append((name, int(occurrence), int(pid)))
    return events

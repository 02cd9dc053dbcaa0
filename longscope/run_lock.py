"""The lock that lets one run at a time write into a run directory, released by the kernel when its holder dies."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from longscope.core import UsageError

P = ParamSpec("P")
T = TypeVar("T")


@contextlib.contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for one run, or raise a UsageError when another live run holds it.

    The lock is a ``flock`` on the directory itself, so no lock file is left behind and a run killed with -9
    leaves no stale lock: the kernel drops it with the process. The directory is made if missing (the lock
    needs something to hold); if the run then fails before writing anything, the directories made here are
    removed again, so a refused start leaves no trace.
    """
    run_dir = Path(run_dir)
    made = _make_dirs(run_dir)
    try:
        descriptor = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        _remove_empty(made)
        raise UsageError(f"cannot use {run_dir} as the run directory: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another longscope run is writing into {run_dir}; wait for it to finish, or give another --out"
            ) from None
        try:
            yield
        except BaseException:
            _remove_empty(made)
            raise
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def holding_run_dir(function: Callable[P, T]) -> Callable[P, T]:
    """Make ``function(config, out_dir, ...)`` run while holding the lock on ``out_dir``."""

    @functools.wraps(function)
    def held(*args: P.args, **kwargs: P.kwargs) -> T:
        out_dir = args[1] if len(args) > 1 else kwargs["out_dir"]
        with hold(Path(out_dir)):  # type: ignore[arg-type]
            return function(*args, **kwargs)

    return held


def _make_dirs(run_dir: Path) -> list[Path]:
    """Create ``run_dir`` and its missing parents; the ones created, deepest first."""
    missing = []
    current = run_dir
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(missing)
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise UsageError(
            f"cannot write to output directory {run_dir}: {reason}; choose another --out"
        ) from None
    return missing


def _remove_empty(made: list[Path]) -> None:
    for directory in made:
        with contextlib.suppress(OSError):  # not empty (something was written) or already gone: keep it
            directory.rmdir()

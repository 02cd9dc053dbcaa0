"""Where longscope keeps what it computes once: converted model weights and generated samples."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """``$LONGSCOPE_CACHE``, else ``$XDG_CACHE_HOME/longscope``, else ``~/.cache/longscope``."""
    explicit = os.environ.get("LONGSCOPE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longscope"


def stable_hash(value: Any, size: int = 16) -> str:
    """A short hash of any JSON-able value that is the same on every machine and Python run."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either the old content or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

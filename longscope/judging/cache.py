"""The judge's disk cache: a judgement is stored under its judge's identity, the prompt's name and version, and
the exact messages, so a re-run or a re-grade by the same judge makes no call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longscope.cache import atomic_write_text, cache_dir, stable_hash


class JudgementCache:
    """Judgements as small JSON files under ``<cache>/judgements/``. Only readable judgements are stored: a
    failed one is asked again next time."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir() / "judgements"

    @staticmethod
    def key(identity: str, prompt_label: str, messages: list[dict[str, str]], budget: int) -> str:
        return stable_hash([identity, prompt_label, messages, budget], size=32)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or damaged: asked again

    def put(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_text(self._path(key), json.dumps(entry, sort_keys=True, ensure_ascii=False))

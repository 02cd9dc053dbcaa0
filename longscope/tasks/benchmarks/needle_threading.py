"""Needle Threading (Roberts, Han and Albanie, ICLR 2025): retrieve values, and follow threads of values, through
haystacks of UUID key-value pairs.

Data: the published records (hub dataset ``jonathan-roberts1/needle-threading``, one split per task; or the
authors' ``json_data`` files): ``single_needle`` (Single_Needle), ``multiple_needles`` (Multiple_Needles),
``conditional_needles`` (Conditional_Needles), ``single_threads`` (Single_Threads) and ``multi_threads``
(Multi_Threads). Each record holds the ``haystack`` (a JSON object of UUID keys and values), the ``question``
(the task's instruction and the key or keys asked), the gold ``values`` (one value, or a list of them written
as a JSON or Python list) and its place in the experiment grid: ``context_length`` (in characters),
``needle_depth``, ``num_needles``, ``thread_length``, ``num_threads``... A --data directory holds
``json_data/<Split>.json`` (or ``<Split>.json``, ``.jsonl``, ``.parquet``).

Prompt: the haystack, a newline and the question, as the authors' example runs it, through the model's chat
template. Output cap: the authors' 100 tokens for one value; tasks that ask for several values get 100 per
value (longscope's extension: a list of UUIDs does not fit in 100 tokens). Score: exact match of the value, or
of the set of values (the ``needle_threading`` scorer). Records longer than the model's window are skipped:
each record's length is a point of the published grid. Breakdowns: ``context_length``, ``needle_depth``,
``num_needles``, ``thread_length``, ``num_threads``.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

SPLITS = {
    "single_needle": "Single_Needle",
    "multiple_needles": "Multiple_Needles",
    "conditional_needles": "Conditional_Needles",
    "single_threads": "Single_Threads",
    "multi_threads": "Multi_Threads",
}
TOKENS_PER_VALUE = 100
# Grid coordinates copied into each sample's metadata when the record has them.
GRID = (
    "context_length",
    "needle_depth",
    "num_needles",
    "needle_placement",
    "conditional_character",
    "thread_length",
    "thread_direction",
    "num_threads",
    "num_kv_pairs",
    "repeat_number",
)
# Where the needed values are hard to tell apart (diffusion) and how many of them are needed (scope).
_PLANE = {
    "single_needle": (0.3, 0.05),
    "multiple_needles": (0.3, 0.3),
    "conditional_needles": (0.6, 0.4),
    "single_threads": (0.5, 0.3),
    "multi_threads": (0.6, 0.5),
}


def values_of(field: Any) -> list[str]:
    """The gold values of a record: a list, or a string holding a JSON or Python list, or one value."""
    if isinstance(field, list):
        return [str(value) for value in field]
    text = field.strip()
    if text.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list | tuple):
                return [str(value) for value in parsed]
    return [text]


@dataclass(frozen=True)
class NeedleThreading(Benchmark):
    """Needle Threading's published records: ``needle_threading:multi_threads``; no subset reads all five."""

    name: ClassVar[str] = "needle_threading"
    description: ClassVar[str] = "Needle Threading: values and threads of values among UUID key-value pairs"
    metric: ClassVar[str] = "needle_threading"
    hub_id: ClassVar[str] = "jonathan-roberts1/needle-threading"
    subsets: ClassVar[tuple[str, ...]] = tuple(SPLITS)
    fields: ClassVar[dict[str, Any]] = {
        "haystack": str,
        "question": str,
        "values": str | list[str],
        "context_length": int,
        "needle_depth": str | int | float,
    }
    truncation: ClassVar[str] = "skip"
    breakdowns: ClassVar[tuple[str, ...]] = (
        "context_length",
        "needle_depth",
        "num_needles",
        "thread_length",
        "num_threads",
    )
    id_field: ClassVar[str | None] = "id"

    @property
    def diffusion(self) -> float:
        return _PLANE.get(self.subset, (0.45, 0.3))[0]

    @property
    def scope(self) -> float:
        return _PLANE.get(self.subset, (0.45, 0.3))[1]

    def data_files(self) -> list[str]:
        split = SPLITS[self.subset]
        return [
            f"json_data/{split}.json",
            f"{split}.json",
            f"{split}.jsonl",
            f"{split}.parquet",
            f"data/{split}.parquet",
        ]

    def hub_args(self) -> dict[str, Any]:
        return {"path": self.hub_id, "split": SPLITS[self.subset]}

    def validate(self, data: dict) -> str | None:
        if not all(value.strip() for value in values_of(data["values"])):
            return "field 'values' holds an empty value"
        return None

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        values = tuple(values_of(record.data["values"]))
        grid = {key: record.data[key] for key in GRID if key in record.data}
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=record.data["haystack"],
            turns=(Turn(question=record.data["question"], answers=values),),
            template="{context}\n{question}",
            max_new_tokens=TOKENS_PER_VALUE * max(1, len(values)),
            metadata={**grid, "values": len(values)},
            evidence=thread_pairs(record.data["haystack"], values),
        )


def thread_pairs(haystack: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """The pairs the gold values need, as the haystack writes them: the pair holding each value, then, walking
    back, the pair whose value is that pair's key, up to the thread's start (one pair for a single needle).
    Nothing where the haystack is not a JSON object of pairs."""
    try:
        pairs = json.loads(haystack)
    except ValueError:
        return ()
    if not isinstance(pairs, dict):
        return ()
    holders: dict[str, list[str]] = {}
    for key, value in pairs.items():
        holders.setdefault(str(value), []).append(key)
    found: dict[str, None] = {}
    for value in values:
        seen: set[str] = set()
        while len(holders.get(value, [])) == 1 and value not in seen:  # a value two keys share is ambiguous
            seen.add(value)
            key = holders[value][0]
            candidates = [json.dumps(key) + sep + json.dumps(pairs[key]) for sep in (": ", ":")]
            written = next((text for text in candidates if text in haystack), None)
            if written is None:
                break
            found[written] = None
            value = key
    return tuple(found)

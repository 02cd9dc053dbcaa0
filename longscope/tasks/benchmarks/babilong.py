"""BABILong (Kuratov et al., 2024): bAbI reasoning facts hidden in long PG-19 text, at published length levels.

Data: the hub dataset ``RMT-team/babilong`` (100 records per task and length; ``RMT-team/babilong-1k-samples``
has 1000), one config per length level ("0k", "1k", ... "128k", ... "10M") and one split per bAbI task ("qa1"
...). Each record has ``input`` (the long context), ``question`` and ``target``. A --data directory holds the
files as the hub lays them out, ``<level>/<task>-00000-of-00001.parquet``, or as ``<level>/<task>.jsonl``
(or .json); a single file is read as the task and level its name and folder say (``8k/qa2.jsonl``).

Prompt: BABILong's default prompt for the task (instruction, in-context examples and post-prompt, each of
which can be left out as its scripts allow), then the context in ``<context>`` tags and the question, sent
through the model's chat template; replies are capped at 20 new tokens as in its evaluation scripts. Score:
BABILong's ``compare_answers`` (the ``babilong`` scorer): the target must be the only task label named in the
reply's first sentence. Records longer than the model's window are skipped, not cut: BABILong measures each
length level only on models whose window holds it. Breakdowns: ``length_level`` and ``qa_task``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.tasks.benchmarks.base import Benchmark, Record

LENGTH_LEVELS = ("0k", "1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k", "256k", "512k", "1M", "10M")
QA_TASKS = tuple(f"qa{i}" for i in range(1, 21))


@functools.cache
def prompts() -> dict[str, dict[str, str]]:
    """BABILong's DEFAULT_PROMPTS (babilong/prompts.py), verbatim: instruction, examples and post-prompt per
    bAbI task. About 20k characters of prompt text live as data beside the code, read on first use."""
    data = resources.files("longscope.tasks.benchmarks").joinpath("data/babilong_prompts.json")
    return json.loads(data.read_text(encoding="utf-8"))


# Place on the difficulty plane: supporting facts are disguised among story text (diffusion); scope grows with
# the number of facts a task chains (one for qa1, two for qa2, three for qa3, counts and lists for qa7/qa8).
_SCOPE = {"qa1": 0.1, "qa2": 0.2, "qa3": 0.3, "qa7": 0.3, "qa8": 0.3, "qa19": 0.3}


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class Babilong(Benchmark):
    """BABILong at one length level: ``babilong:qa1(length_level=8k)``; no subset reads qa1-qa10."""

    name: ClassVar[str] = "babilong"
    description: ClassVar[str] = "BABILong: bAbI facts hidden in PG-19 text at a published length level"
    metric: ClassVar[str] = "babilong"
    hub_id: ClassVar[str] = "RMT-team/babilong"
    subsets: ClassVar[tuple[str, ...]] = QA_TASKS
    # The tasks the hub publishes at every length level.
    default_subsets: ClassVar[tuple[str, ...] | None] = QA_TASKS[:10]
    fields: ClassVar[dict[str, Any]] = {"input": str, "question": str, "target": str}
    truncation: ClassVar[str] = "skip"
    breakdowns: ClassVar[tuple[str, ...]] = ("length_level", "qa_task")
    id_field: ClassVar[str | None] = None

    length_level: str = "4k"
    instruction: bool = True
    examples: bool = True
    post_prompt: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length_level not in LENGTH_LEVELS:
            raise UsageError(
                f"babilong: unknown length_level {self.length_level!r}; levels: {', '.join(LENGTH_LEVELS)}"
            )

    @property
    def diffusion(self) -> float:
        return 0.5

    @property
    def scope(self) -> float:
        return _SCOPE.get(self.subset, 0.2)

    def data_files(self) -> list[str]:
        level, task = self.length_level, self.subset
        return [
            f"{level}/{task}-00000-of-00001.parquet",
            f"{level}/{task}.parquet",
            f"{level}/{task}.jsonl",
            f"{level}/{task}.json",
            f"{task}/{level}-00000-of-00001.parquet",
            f"{task}_{level}.jsonl",
        ]

    def hub_args(self) -> dict[str, Any]:
        return {"path": self.hub_id, "name": self.length_level, "split": self.subset}

    def validate(self, data: dict) -> str | None:
        return None if data["target"].strip() else "field 'target' is empty"

    def qa_task(self, record: Record) -> str:
        """The bAbI task of a record: its subset, or what the name of the one file read says (``qa2.jsonl``)."""
        task = record.subset or self.subset or self._from_file(r"(?<![a-z0-9])(qa\d{1,2})(?!\d)", name=True)
        if task not in prompts():
            raise UsageError(
                f"babilong: cannot tell which bAbI task {self.data} holds; name it, e.g. babilong:qa1"
            )
        return task

    def level_of(self) -> str:
        """The length level of the records: the folder a single --data file sits in when it names a level
        (``8k/qa1.jsonl``), else the ``length_level`` parameter."""
        folder = self._from_file(r"^(\d+[kM])$", name=False)
        return folder if folder in LENGTH_LEVELS else self.length_level

    def _from_file(self, pattern: str, *, name: bool) -> str:
        if self.data is None or not Path(self.data).is_file():
            return ""
        path = Path(self.data)
        match = re.search(pattern, path.name.lower() if name else path.parent.name)
        return match.group(1) if match else ""

    def template(self, task: str) -> str:
        """BABILong's DEFAULT_TEMPLATE for ``task`` with the parts this instance uses, {context}/{question} open."""
        prompt = prompts()[task]
        parts = [
            prompt["instruction"] if self.instruction else "",
            prompt["examples"] if self.examples else "",
            prompt["post_prompt"] if self.post_prompt else "",
        ]
        # BABILong strips the whole formatted input; only the head can start with whitespace.
        head = "\n\n".join(parts) + "\n\n"
        return _escape(head.lstrip()) + "<context>\n{context}\n</context>\n\nQuestion: {question}"

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        task = self.qa_task(record)
        question = record.data["question"].strip()
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=record.data["input"].strip(),
            turns=(Turn(question=question, answers=(record.data["target"],)),),
            template=self.template(task),
            max_new_tokens=20,
            metadata={
                "subset": task,
                "qa_task": task,
                "length_level": self.level_of(),
                "question": question,
            },
        )

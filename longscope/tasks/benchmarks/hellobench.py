"""HelloBench (Que et al. 2024): long-text generation in five categories, each answer graded by a judge against
the record's own checklist, read from its published JSONL files via --data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

CATEGORIES = ("open_ended_qa", "summarization", "chat", "text_completion", "heuristic_text_generation")
# HelloBench leaves the answer's length to the model; this cap is longscope's, large enough for its
# "at least N words" requests on most models, and a number a run can override with max_new_tokens=.
MAX_NEW_TOKENS = 4096
# (diffusion, scope): summaries and continuations need the whole given text; the rest need none.
PLANE = {
    "open_ended_qa": (0.1, 0.2),
    "summarization": (0.2, 0.9),
    "chat": (0.1, 0.2),
    "text_completion": (0.2, 0.6),
    "heuristic_text_generation": (0.1, 0.3),
}


@dataclass(frozen=True)
class HelloBench(Benchmark):
    name: ClassVar[str] = "hellobench"
    description: ClassVar[str] = (
        "HelloBench: open-ended QA, summarisation, chat, text completion and heuristic text generation, each "
        "answer graded by the judge (--judge) on the record's checklist, 0-1 per item in quarter steps"
    )
    needs_judge: ClassVar[bool] = True
    hub_id: ClassVar[str] = "Quehry/HelloBench"
    subsets: ClassVar[tuple[str, ...]] = CATEGORIES
    fields: ClassVar[dict[str, Any]] = {"id": str, "chat_prompt": str, "checklists": list[str]}
    id_field: ClassVar[str | None] = "id"
    truncation: ClassVar[str] = "middle"
    subset_from_file = True
    subset_planes = PLANE
    departures: ClassVar[tuple[str, ...]] = (
        "HelloBench's judge (GPT-4o, temperature 0.8) answers a Python list of {checklist_id, reason, "
        "evaluation_score}; longscope asks its own checklist prompt (judging/prompts.py, greedy) for one "
        "'<item>: <grade> - <reason>' line per item, and reads HelloBench-style JSON lists too. The grades are "
        "HelloBench's five: 0, 0.25, 0.5, 0.75, 1.",
        "A record's score is the mean of its item grades; HelloBench weighs the items of each category with "
        "weights fitted to human ratings (regression.py), which its records do not carry.",
        "HelloBench cuts a response to 16,000 words before grading; longscope refuses a judge whose window "
        "cannot hold the longest answer the run allows, up front.",
    )

    @property
    def metric(self) -> str:
        return "judge"

    def data_files(self) -> list[str]:
        # The repository keeps them in HelloBench/ (older) and data/main_data/ (newer).
        stem = self.subset or "data"
        return [f"{stem}.jsonl", f"HelloBench/{stem}.jsonl", f"data/main_data/{stem}.jsonl"]

    def validate(self, data: dict) -> str | None:
        if not data["checklists"]:
            return "no checklist items"
        if not data["chat_prompt"].strip():
            return "empty chat_prompt"
        return None

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        data = record.data
        prompt = data["chat_prompt"]
        # The text to summarise or continue (raw_text) sits inside the prompt: kept apart as the context, so
        # prompt-level methods can work on it and truncation cuts it, not the instruction.
        raw = data.get("raw_text") or ""
        if raw and len(raw) > 200 and prompt.count(raw) == 1:
            before, after = prompt.split(raw)
            template = _escaped(before) + "{context}" + _escaped(after) + "{question}"
            context = raw
        else:
            template, context = "{context}" + _escaped(prompt) + "{question}", ""
        category = record.subset or self.subset or str(data.get("category") or "")
        diffusion, scope = PLANE.get(category, (0.1, 0.3))
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=context,
            turns=(Turn(question="", answers=()),),
            template=template,
            max_new_tokens=MAX_NEW_TOKENS,
            metadata={
                "subset": category,
                "category": str(data.get("category") or ""),
                "judge_prompt": "checklist",
                "checklist": list(data["checklists"]),
                "judge_sees": "message",
                "diffusion": diffusion,
                "scope": scope,
            },
        )


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")

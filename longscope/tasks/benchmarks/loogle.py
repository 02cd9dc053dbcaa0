"""LooGLE (Li et al. 2023): long documents with many questions each, one sample per document, one turn each.

Prompts and output caps are LooGLE's (config/task2prompt.json, config/task2maxlen.json), fed as plain text as
its script for open models does (Prediction/pred_opensource_models.py), with its middle truncation. Its
repetition penalty of 2 for open models is a generation setting a sample cannot carry, and is not applied.
QA and summaries are scored by ROUGE-L recall, clozes by exact match of the masked entities (loogle scorers).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

_QA = "Please answer the question based on the long texts below. \n{context}\nQuestion: {question}\nAnswer: "
TEMPLATE = {
    "shortdep_qa": _QA,
    "longdep_qa": _QA,
    "longdep_summarization": "Please generate a summary of the below paper. \n{context}\n Summarization: ",
    # Verbatim, "Organiocation" included; the doubled braces are one literal brace each.
    "shortdep_cloze": "Please fill in the clozes based on the given long texts below. Each of the placeholder "
    "'<mask-n>' in the question could be an entity of Person, Location or Organiocation. The same masks "
    "represent the same entity. Output a json format answer, for example: {{'<mask-0>': 'Bob', '<mask-1>': "
    "'Gorrosion Magazine','<mask-2>': 'Bethel Horizon'}}\n{context}\n Question: {question} What are the "
    "masked entities? \nAnswer:",
}
MAX_NEW_TOKENS = {"shortdep_qa": 300, "longdep_qa": 500, "longdep_summarization": 500, "shortdep_cloze": 50}
METRIC = {
    "shortdep_qa": "loogle_rouge_l",
    "longdep_qa": "loogle_rouge_l",
    "longdep_summarization": "loogle_rouge_l",
    "shortdep_cloze": "loogle_cloze",
}
# (diffusion, scope): short dependency needs one passage, long dependency gathers and orders many.
PLANE = {
    "shortdep_qa": (0.4, 0.2),
    "shortdep_cloze": (0.4, 0.3),
    "longdep_qa": (0.6, 0.7),
    "longdep_summarization": (0.3, 1.0),
}


@dataclass(frozen=True)
class LooGLE(Benchmark):
    name: ClassVar[str] = "loogle"
    description: ClassVar[str] = (
        "LooGLE: questions needing one passage (QA, entity cloze) or the whole document (QA, summary) over "
        "recent Wikipedia, arXiv papers and scripts"
    )
    hub_id: ClassVar[str] = "bigai-nlco/LooGLE"
    subsets: ClassVar[tuple[str, ...]] = tuple(METRIC)
    fields: ClassVar[dict[str, Any]] = {"input": str, "qa_pairs": str | list[dict], "output": str}
    id_field: ClassVar[str | None] = "title"

    subset_from_file = True

    def data_files(self) -> list[str]:
        stem = self.subset
        return [f"{stem}.jsonl", f"LooGLE-testdata/{stem}.jsonl", f"data/{stem}.jsonl", f"{stem}.json"]

    def hub_args(self) -> dict[str, Any]:
        return self.hub_file(f"{self.subset}.jsonl")

    def validate(self, data: dict) -> str | None:
        return task_problem(self.subset, data)

    subset_metrics = METRIC
    subset_planes = PLANE

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        task = record.subset or self.subset
        data = record.data
        if task == "longdep_summarization":
            turns: tuple[Turn, ...] = (Turn(question="", answers=(data["output"],)),)
            kinds: list[str] = []
        else:
            pairs = qa_pairs(data)
            turns = tuple(Turn(question=pair["Q"], answers=(_gold(pair["A"]),)) for pair in pairs)
            kinds = [str(pair.get("type", "")) for pair in pairs]
        diffusion, scope = PLANE[task]
        metadata: dict[str, Any] = {
            "subset": task,
            "metric": METRIC[task],
            "title": str(data.get("title") or ""),
            "diffusion": diffusion,
            "scope": scope,
        }
        if any(kinds):  # longdep_qa: comprehension_and_reasoning, computation, timeline_reorder, ...
            metadata["question_types"] = kinds
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["input"],
            turns=turns,
            template=TEMPLATE[task],
            max_new_tokens=MAX_NEW_TOKENS[task],
            chat=False,
            metadata=metadata,
        )


def qa_pairs(data: dict) -> list[dict]:
    """The record's question-answer pairs: LooGLE stores them as the text of a Python list of dicts."""
    pairs = data["qa_pairs"]
    return ast.literal_eval(pairs) if isinstance(pairs, str) else pairs


def _gold(answer: str | dict) -> str:
    """A QA answer as it is; a cloze's mask -> entity mapping as a JSON object, the form the model is asked
    to give."""
    return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def task_problem(task: str, data: dict) -> str | None:
    """Why a record cannot be used for ``task``, or None."""
    if task == "longdep_summarization":
        return None if data["output"].strip() else "field 'output' (the reference summary) is empty"
    try:
        pairs = qa_pairs(data)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "field 'qa_pairs' is not a readable list of question-answer pairs"
    if not isinstance(pairs, list) or not pairs:
        return "field 'qa_pairs' holds no question-answer pairs"
    cloze = task == "shortdep_cloze"
    for number, pair in enumerate(pairs, start=1):
        if not isinstance(pair, dict) or not isinstance(pair.get("Q"), str):
            return f"qa pair {number} has no question 'Q'"
        answer = pair.get("A")
        if cloze and not (
            isinstance(answer, dict) and answer and all(isinstance(v, str) for v in answer.values())
        ):
            return f"qa pair {number}: a cloze answer 'A' should map each mask to its entity"
        if not cloze and not (isinstance(answer, str) and answer.strip()):
            return f"qa pair {number} has no answer 'A'"
    return None

"""Grading the rows of judged samples: the request a sample's metadata asks for, and the row the judgement makes."""

from __future__ import annotations

import dataclasses
import json

from longscope.core import Result, Sample
from longscope.judging.judge import GradingRequest, Judge
from longscope.judging.prompts import REFERENCE, REFERENCE_ITEMS, prompt_named

# What a task writes into a judged sample's metadata (the whole contract between a task and the judge):
#   judge_prompt: a prompt name of longscope.judging.prompts (checklist, reference)
#   checklist:    the items to grade, for the checklist prompt (one list for every turn)
#   judge_sees:   "question" (default: the turn's question alone, as L-Eval's judges read it) or "message"
#                 (the whole user message, source text included, as HelloBench's judges read it)
# The reference prompt compares with the turn's first gold answer.
JUDGE_PROMPT = "judge_prompt"


def needs_judge(sample: Sample) -> bool:
    return JUDGE_PROMPT in sample.metadata


def grading_request(sample: Sample, turn: int, response: str) -> GradingRequest:
    """What the judge is asked about one turn's response."""
    prompt = prompt_named(sample.metadata[JUDGE_PROMPT])
    asked = sample.turns[turn]
    if sample.metadata.get("judge_sees") == "message":
        instruction = sample.messages(turn)[-1]["content"]
    else:
        instruction = asked.question
    if prompt.name == REFERENCE.name:
        return GradingRequest(prompt, instruction, response, REFERENCE_ITEMS, asked.answers[0])
    return GradingRequest(prompt, instruction, response, tuple(sample.metadata["checklist"]))


def check_fits(judge: Judge, sample: Sample) -> None:
    """Raise JudgeWindowError when the judge cannot hold a response of the sample's whole output budget."""
    for turn in range(len(sample.turns)):
        judge.check_window(grading_request(sample, turn, ""), sample.max_new_tokens)


def grade_row(judge: Judge, row: Result, sample: Sample) -> Result:
    """The row with the judge's grade: its score the mean item grade, the judgement in its details, the judge's
    tokens, calls, seconds and cost in its own columns. A judgement that failed makes a failed row that keeps
    the prediction and says why; it is graded again on the next run."""
    request = grading_request(sample, row.turn, row.prediction)
    judgement = judge.grade(request)
    details = json.loads(row.details) if row.details else {}
    details.update(judgement.details(judge.identity, request.prompt, request.items))
    usage = judgement.usage
    graded = dataclasses.replace(
        row,
        details=json.dumps(details, sort_keys=True, ensure_ascii=False),
        judge=judge.identity,
        judge_calls=usage.calls,
        judge_input_tokens=usage.input_tokens,
        judge_output_tokens=usage.output_tokens,
        judge_s=usage.seconds,
        judge_cost=usage.cost,
    )
    if judgement.ok:
        graded.score = judgement.score
        return graded
    graded.status = "failed"
    graded.score = None
    graded.error = (judgement.error or "judge failed")[:2000]
    return graded

"""``no-context``: the question without its context: what the model answers from memory alone."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined


@dataclass(frozen=True)
class NoContext(PromptMethod):
    """The task's own prompt with the context left empty: instructions, question and answer prefix are sent
    as the task wrote them, so the score is the floor any reading of the context has to beat."""

    name = "no-context"
    description = "the question alone, with the context left out: what the model knows without reading"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError(f"method {self.name} sends no context, so it takes no ratio or budget")

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        return combined([backend.generate(request.with_context("") if request.context else request)])

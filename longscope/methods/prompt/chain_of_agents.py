"""``chain-of-agents``: workers read the chunks in turn, each passing a short note on; a manager answers."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.methods.prompt._rag import chunks_of, needs_context

WORKER = (
    "{chunk}\n\nNotes from the earlier passages: {note}\n\nQuestion: {question}\n\n"
    "Rewrite the notes so that they keep everything from the earlier notes and from the passage above that "
    "helps answer the question. Reply with the notes only."
)
NO_NOTE = "(none yet)"


@dataclass(frozen=True)
class ChainOfAgents(PromptMethod):
    """Chain-of-Agents (Zhang et al., 2024): the context cut into chunks of whole sentences of at most
    ``chunk`` tokens; worker i reads chunk i with worker i−1's note and writes a note of at most ``note``
    tokens; the manager answers the task's own prompt with the last note in place of the context. One row
    counts every worker call and the manager's."""

    name = "chain-of-agents"
    description = "workers read the chunks in order passing notes on; a manager answers from the last note"
    chunk: int = 1024
    note: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError(f"method {self.name}: every chunk is read; give a chunk size, not a budget")
        if self.chunk < 1 or self.note < 1:
            raise UsageError(f"method {self.name}: chunk and note must be at least 1 token")

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        needs_context(self, sample)
        if self.chunk + self.note >= backend.context_window:
            raise UsageError(
                f"method {self.label()}: a worker reads {self.chunk} tokens and writes {self.note}, more "
                f"than the window of {backend.context_window}; give a smaller chunk"
            )

    def notes(
        self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend
    ) -> list[Generation]:
        """The workers' calls in order; each one's text is the note the next reads."""
        question = sample.turns[turn].question
        written: list[Generation] = []
        for chunk in chunks_of(backend, request.context or "", self.chunk, 0):
            note = written[-1].text.strip() if written else ""
            prompt = WORKER.format(chunk=chunk.text.strip(), note=note or NO_NOTE, question=question)
            written.append(
                backend.generate(
                    GenerationRequest(
                        messages=[{"role": "user", "content": prompt}],
                        max_new_tokens=self.note,
                        chat=request.chat,
                        seed=request.seed,
                    )
                )
            )
        return written

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        if not request.context:
            return combined([backend.generate(request)])
        workers = self.notes(sample, turn, request, backend)
        last = workers[-1].text.strip() if workers else ""
        return combined([*workers, backend.generate(request.with_context(last or NO_NOTE))])

"""``recurrent``: the answer written segment by segment, each call carrying a short rolling memory of what was
written and the last segment in full (RecurrentGPT)."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.methods.prompt._writing import ask, instruction_of, longest_prompt

WRITE = (
    "Here is a writing instruction:\n\n<instruction>\n{instruction}\n</instruction>\n\n"
    "The text is written in {segments} parts. A short memory of what the earlier parts said:\n{memory}\n\n"
    "The last part written:\n<last>\n{last}\n</last>\n\n"
    "Now write part {number} of {segments}{closing}. Continue from the last part without repeating it, and "
    "reply with the new part's text only."
)
REMEMBER = (
    "A short memory of a text being written:\n{memory}\n\nThe part just written:\n<part>\n{part}\n</part>\n\n"
    "Rewrite the memory so that it keeps, in a few sentences, what a writer continuing the text needs: what "
    "has been covered, names, facts and numbers already given, and what is still to come. Reply with the "
    "memory only."
)
NOTHING_YET = "(nothing yet)"
# A segment with fewer output tokens than this cannot carry the text forward.
MIN_SEGMENT_TOKENS = 16
# Tokens of the prompts' own wording around the instruction, memory and last part (about 80 on the SmolLM2
# tokenizer; a margin for other tokenizers).
PROMPT_OVERHEAD = 140


@dataclass(frozen=True)
class Recurrent(PromptMethod):
    """RecurrentGPT (Zhou et al., 2023): the sample's output budget cut into ``segments`` equal parts; the
    call for part i carries the instruction, a memory of at most ``memory`` tokens and part i−1 in full, and
    after each part but the last a second call rewrites the memory with it. The parts are joined. RecurrentGPT
    asks for the paragraph and the memory in one structured reply; two plain calls keep the flow working with
    models too small to follow a reply format. One row counts every call."""

    name = "recurrent"
    description = (
        "segments written in turn, each carrying a rolling memory of the text so far and the last segment"
    )
    segments: int = 4
    memory: int = 96

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError(
                f"method {self.name}: it keeps the whole prompt; give segments=N, not a ratio or budget"
            )
        if self.segments < 1 or self.memory < 1:
            raise UsageError(f"method {self.name}: segments and memory must be at least 1")

    def segment_tokens(self, budget: int) -> int:
        return budget // self.segments

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        segment = self.segment_tokens(sample.max_new_tokens)
        if segment < MIN_SEGMENT_TOKENS:
            raise UsageError(
                f"method {self.label()}: {sample.id} has an output budget of {sample.max_new_tokens} tokens, too "
                f"few for {self.segments} segments of at least {MIN_SEGMENT_TOKENS}; give fewer segments"
            )
        prompt = longest_prompt(sample, backend)
        # A writing call reads the prompt, the memory and the last segment, and writes one more segment.
        needed = prompt + self.memory + 2 * segment + PROMPT_OVERHEAD
        if needed > backend.context_window:
            raise UsageError(
                f"method {self.label()}: a writing call of {sample.id} reads its prompt ({prompt} tokens), the "
                f"memory ({self.memory}) and the last segment, and writes one ({segment}): {needed} tokens, more "
                f"than the window of {backend.context_window}; use a shorter length or more segments"
            )

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        instruction = instruction_of(request)
        segment = self.segment_tokens(request.max_new_tokens)

        calls: list[Generation] = []
        parts: list[str] = []
        memory = ""
        for number in range(1, self.segments + 1):
            prompt = WRITE.format(
                instruction=instruction,
                segments=self.segments,
                memory=memory or NOTHING_YET,
                last=parts[-1] if parts else NOTHING_YET,
                number=number,
                closing=", the last one: bring the text to its end" if number == self.segments else "",
            )
            # The task's answer prefix opens the first part, as it would open a direct answer.
            written = ask(backend, request, prompt, segment, request.answer_prefix if number == 1 else "")
            calls.append(written)
            part = written.text.strip()
            if part:
                parts.append(part)
            if number < self.segments:
                remembered = ask(
                    backend,
                    request,
                    REMEMBER.format(memory=memory or NOTHING_YET, part=part or NOTHING_YET),
                    self.memory,
                )
                calls.append(remembered)
                memory = remembered.text.strip() or memory
        return combined(calls, "\n\n".join(parts))

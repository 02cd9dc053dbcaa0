"""``plan-write``: one call outlines the answer with a word budget per section, then each section is written in
turn with the outline and the text so far, and the sections are joined (AgentWrite, after LongWriter)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.methods.prompt._writing import ask, instruction_of, longest_prompt

OUTLINE = (
    "Here is a writing instruction:\n\n<instruction>\n{instruction}\n</instruction>\n\n"
    "Do not write the text yet. Plan it as exactly {sections} sections, one line each, in this form:\n"
    "Section 1: <what the section covers> (<N> words)\n"
    "Choose the word counts so that together they meet the length the instruction asks for. "
    "Reply with the {sections} lines only."
)
SECTION = (
    "Here is a writing instruction:\n\n<instruction>\n{instruction}\n</instruction>\n\n"
    "The plan for the text:\n{outline}\n\nWhat has been written so far:\n<written>\n{written}\n</written>\n\n"
    "Now write section {number} of {sections} only: {point} Write about {words} words. Continue from the "
    "text so far without repeating it, and reply with the new section's text only."
)
NOTHING_YET = "(nothing yet)"
# A section the outline gives no budget for gets an equal share; a budget in a line reads "(120 words)".
_BUDGET = re.compile(r"(\d[\d,]*)\s*words?\b", re.IGNORECASE)
_LEAD = re.compile(
    r"^\s*(?:[-*#]+\s*)?(?:(?:section|paragraph|part)\s*\d+|\d+)\s*[:.)\-–—]*\s*", re.IGNORECASE
)
# A section that gets fewer output tokens than this cannot say anything of its own.
MIN_SECTION_TOKENS = 16
# Tokens of the section prompt's own wording around the instruction, outline and text so far (measured on the
# SmolLM2 tokenizer at about 90; a margin for other tokenizers).
SECTION_OVERHEAD = 160
# Words per output token, for the word figure a section is asked for (English prose runs near 0.75).
WORDS_PER_TOKEN = 0.75


@dataclass(frozen=True)
class Section:
    """One line of the outline: what the section covers, its word budget, and the output tokens it may use."""

    point: str
    words: int
    max_new_tokens: int


@dataclass(frozen=True)
class PlanWrite(PromptMethod):
    """AgentWrite (Bai et al., 2024, LongWriter): the model first writes an outline of ``sections`` sections,
    each with a word budget, in at most ``outline`` tokens; then one call per section writes it, carrying the
    instruction, the outline and everything written so far. The sample's output budget is shared among the
    sections in proportion to their word budgets. One row counts the outline call and every section call."""

    name = "plan-write"
    description = "outline with a word budget per section, then each section written in turn, joined"
    sections: int = 4
    outline: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError(
                f"method {self.name}: it keeps the whole prompt; give sections=N, not a ratio or budget"
            )
        if self.sections < 1 or self.outline < 1:
            raise UsageError(f"method {self.name}: sections and outline must be at least 1")

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        if sample.max_new_tokens < self.sections * MIN_SECTION_TOKENS:
            raise UsageError(
                f"method {self.label()}: {sample.id} has an output budget of {sample.max_new_tokens} tokens, too "
                f"few for {self.sections} sections of at least {MIN_SECTION_TOKENS}; give fewer sections"
            )
        prompt = longest_prompt(sample, backend)
        # The last section reads the prompt, the outline and nearly the whole output, and writes its share.
        needed = prompt + self.outline + sample.max_new_tokens + SECTION_OVERHEAD
        if needed > backend.context_window:
            raise UsageError(
                f"method {self.label()}: a section call of {sample.id} reads its prompt ({prompt} tokens), the "
                f"outline ({self.outline}) and the text so far, up to {needed} tokens with the output budget of "
                f"{sample.max_new_tokens}, more than the window of {backend.context_window}; use a shorter "
                "length, a smaller outline or another method"
            )

    def plan(self, text: str, budget: int) -> list[Section]:
        """Exactly ``sections`` sections from the outline's text: its first non-empty lines, each with the word
        budget it names; lines missing are filled with a generic point, budgets missing with an equal share. The
        output budget is split in proportion to the word budgets, with at least MIN_SECTION_TOKENS each."""
        lines = [line.strip() for line in text.splitlines() if line.strip()][: self.sections]
        points, words = [], []
        for line in lines:
            found = _BUDGET.search(line)
            words.append(int(found.group(1).replace(",", "")) if found else None)
            point = _BUDGET.sub("", _LEAD.sub("", line)).strip(" ()[]-–—:;,.")
            points.append(point)
        while len(points) < self.sections:
            points.append("")
            words.append(None)
        points = [p or f"part {i + 1} of the text" for i, p in enumerate(points)]
        equal = max(1, round(budget * WORDS_PER_TOKEN / self.sections))
        words = [w if w else equal for w in words]
        # Each section first gets the minimum, then the rest of the budget is split in proportion to the words
        # asked for, rounded down: the total never exceeds the sample's budget, however odd the outline's figures.
        total = sum(words)
        spare = budget - MIN_SECTION_TOKENS * self.sections
        shares = [MIN_SECTION_TOKENS + spare * w // total for w in words]
        return [Section(p, w, s) for p, w, s in zip(points, words, shares, strict=True)]

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        instruction = instruction_of(request)
        outline_call = ask(
            backend, request, OUTLINE.format(instruction=instruction, sections=self.sections), self.outline
        )
        sections = self.plan(outline_call.text, request.max_new_tokens)
        outline = "\n".join(f"Section {i + 1}: {s.point} ({s.words} words)" for i, s in enumerate(sections))
        calls, written = [outline_call], []
        for number, section in enumerate(sections, start=1):
            prompt = SECTION.format(
                instruction=instruction,
                outline=outline,
                written="\n\n".join(written) or NOTHING_YET,
                number=number,
                sections=self.sections,
                point=section.point,
                words=section.words,
            )
            # The task's answer prefix opens the first section, as it would open a direct answer.
            prefix = request.answer_prefix if number == 1 else ""
            call = ask(backend, request, prompt, section.max_new_tokens, prefix)
            calls.append(call)
            if call.text.strip():
                written.append(call.text.strip())
        return combined(calls, "\n\n".join(written))

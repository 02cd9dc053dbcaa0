"""The judge's prompt templates, each with a name and a version that key its cache and are stored with a run."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import UsageError

# The five grades an item may get, after HelloBench's scale: 0 (unmet) to 1 (fully met) in quarter steps.
GRADES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class JudgePrompt:
    """A template the judge is asked in. Changing its text means a new ``version``: cached judgements of the
    old text are then not reused, and a run records which version graded it."""

    name: str
    version: str
    system: str
    template: str  # fills {instruction}, {response}, {items}, {count} and, where used, {reference}

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def messages(
        self, instruction: str, response: str, items: tuple[str, ...], reference: str | None = None
    ) -> list[dict[str, str]]:
        listed = "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))
        user = self.template.format(
            instruction=instruction,
            response=response,
            items=listed,
            count=len(items),
            reference=reference or "",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "system": self.system, "template": self.template}


_SCALE = (
    "Grade each item on this scale:\n"
    "0 = the response does not meet it at all;\n"
    "0.25 = it meets a small part of it, and important parts are missing;\n"
    "0.5 = it meets it about half way, or it is unclear whether it does;\n"
    "0.75 = it meets most of it, with small lapses;\n"
    "1 = it meets it fully, with nothing left to improve."
)
_ANSWER_FORMAT = (
    "Answer with exactly {count} lines, one per item, in the order given, each written as\n"
    "<item number>: <grade> - <one short reason>\n"
    "for example `2: 0.75 - covers every point but the last`. Use only the grades 0, 0.25, 0.5, 0.75 and 1, "
    "and write nothing before or after the {count} lines."
)

CHECKLIST = JudgePrompt(
    name="checklist",
    version="1",
    system=(
        "You grade long answers written by language models. You are strict and fair, you judge only what the "
        "response says, and a long response earns nothing for its length alone."
    ),
    template=(
        "Here is the instruction the model was given:\n<instruction>\n{instruction}\n</instruction>\n\n"
        "Here is the model's response:\n<response>\n{response}\n</response>\n"
        "The response has ended.\n\n"
        "Grade the response against each of these {count} checklist items:\n{items}\n\n"
        + _SCALE
        + "\n\n"
        + _ANSWER_FORMAT
    ),
)

# L-Eval's judges compare an answer with a human reference and are told to count only what agrees with it
# (extra details are no advantage, factual errors against the reference weigh most, length must not sway).
REFERENCE = JudgePrompt(
    name="reference",
    version="1",
    system=(
        "You are an impartial judge of answers to questions about a long document. You are given a reference "
        "answer written by a person. Details the reference does not mention are no advantage; factual errors "
        "against the reference weigh most; the length of an answer must not sway you."
    ),
    template=(
        "The question or instruction about the document:\n<instruction>\n{instruction}\n</instruction>\n\n"
        "The reference answer:\n<reference>\n{reference}\n</reference>\n\n"
        "The answer to grade:\n<response>\n{response}\n</response>\n\n"
        "Grade the answer against each of these {count} items:\n{items}\n\n"
        + _SCALE
        + "\n\n"
        + _ANSWER_FORMAT
    ),
)
# What REFERENCE grades: one item, agreement with the reference (L-Eval's judges decide on the same ground).
REFERENCE_ITEMS = (
    "Does the answer agree with the reference answer, with no statement that contradicts it and nothing "
    "important of it missing?",
)

PROMPTS = {prompt.name: prompt for prompt in (CHECKLIST, REFERENCE)}


def prompt_named(name: str) -> JudgePrompt:
    try:
        return PROMPTS[name]
    except KeyError:
        raise UsageError(f"unknown judge prompt {name!r}; prompts: {', '.join(sorted(PROMPTS))}") from None

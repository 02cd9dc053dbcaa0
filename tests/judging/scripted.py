"""A judge backend whose replies a test writes: counts its calls and sees every request it is sent."""

from __future__ import annotations

import re
from collections.abc import Callable

from longscope.core import Capabilities, Generation, GenerationRequest


def grades_reply(*grades: float) -> str:
    return "\n".join(f"{n}: {g:g} - reason" for n, g in enumerate(grades, start=1))


def full_marks(messages: list[dict[str, str]]) -> str:
    """Grade 1 for every item the prompt lists (it says how many lines to write)."""
    asked = re.search(r"exactly (\d+) lines", messages[-1]["content"])
    return grades_reply(*([1.0] * int(asked.group(1)))) if asked else "OK"


class ScriptedJudge:
    """Words count as tokens; ``reply`` makes each answer from the request's messages, or raises."""

    kind = "scripted"
    model_revision = "test"
    capabilities = Capabilities(tokenization="local")

    def __init__(self, reply: Callable[[list[dict[str, str]]], str] = full_marks, *, name: str = "judge-a",
                 window: int = 100_000) -> None:  # fmt: skip
        self.reply = reply
        self.model_name = name
        self.context_window = window
        self.requests: list[GenerationRequest] = []

    def render(self, messages, answer_prefix: str = "", chat: bool = True) -> str:
        return "\n".join(m["content"] for m in messages) + answer_prefix

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        text = self.reply(request.messages)
        prompt = self.render(request.messages)
        return Generation(text, self.count_tokens(prompt), len(text.split()), 0.0, 0.0, 0.01)

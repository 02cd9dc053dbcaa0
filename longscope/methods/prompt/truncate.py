"""``truncate``: the context cut to a token budget before it is sent; the cheapest long-context baseline."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import PromptMethod, combined
from longscope.truncation import keep_tokens

# Every policy of --truncation that cuts a context; its fourth, skip, drops the sample instead.
POLICIES = ("middle", "left", "right")


@dataclass(frozen=True)
class Truncate(PromptMethod):
    """Keep ``budget`` tokens of the context (or drop the ``ratio`` share of them) where ``policy`` says:
    ``middle`` keeps its head and tail, ``left`` drops its start, ``right`` drops its end. Instructions,
    question and answer prefix are sent whole. With neither a budget nor a ratio it sends the context as is."""

    name = "truncate"
    description = "the context cut to a token budget (middle, left or right) before it is sent"
    policy: str = "middle"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy == "skip":
            raise UsageError(
                f"unknown policy 'skip' for method {self.name}: skip drops a sample rather than cutting it (that "
                f"is --truncation skip, for samples over the window); choose one of {', '.join(POLICIES)}"
            )
        if self.policy not in POLICIES:
            raise UsageError(
                f"method {self.name}: unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}"
            )

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        context = request.context or ""
        ids = backend.encode(context)
        cut = keep_tokens(backend, context, self.kept(len(ids)), self.policy, ids)
        return combined([backend.generate(request.with_context(cut) if request.context else request)])

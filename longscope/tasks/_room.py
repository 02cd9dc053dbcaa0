"""The up-front check that a task's own sentences (needles, records, turns) fit beside its prompt at a length."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.core import Backend, UsageError
from longscope.tasks.base import prompt_tokens


def require_room(
    backend: Backend,
    *,
    label: str,
    length: int,
    max_new_tokens: int,
    template: str,
    question: str,
    prefix: str,
    texts: Sequence[str],
    what: str,
    fix: str,
) -> None:
    """Refuse, in one line, a length at which the prompt plus ``texts`` alone already overflows the budget:
    ``what`` names the texts ("4 needles"), ``fix`` says which parameter to lower."""
    needed = prompt_tokens(backend, template, question, prefix, "".join(texts).lstrip())
    room = length - max_new_tokens
    if needed > room:
        raise UsageError(
            f"{label}: {what} with the instructions take about {needed} tokens, but only {room} are left at "
            f"length {length} after the output budget; {fix} or raise the length"
        )

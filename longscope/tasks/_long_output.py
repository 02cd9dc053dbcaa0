"""What the long-output task families share: the family tag, the token rules for length targets, and the
up-front check that the output budget fits beside the input."""

from __future__ import annotations

import dataclasses
import random

from longscope.cache import stable_hash
from longscope.core import Backend, UsageError
from longscope.tasks.base import Task, prompt_tokens

FAMILY = "long_output"

# Output tokens a word target needs, for SmolLM2-like BPE tokenizers: about 1.3 tokens per English word and
# 1 per Chinese character. A budget below target × rate cannot hold the text asked for.
TOKENS_PER_WORD = {"en": 1.3, "zh": 1.0}


def seeded(task: Task, seed: int, *, leave_out: tuple[str, ...] = ()) -> random.Random:
    """Randomness from the task's name, its parameters but ``leave_out`` (those that change how the same
    instance is asked, never what it is) and the seed: the length and depth never enter."""
    params = {key: value for key, value in task.params().items() if key not in leave_out}
    return random.Random(int(stable_hash([task.name, params, seed]), 16))


def check_budget_fits(
    task: Task, backend: Backend, length: int, template: str, question: str, prefix: str, items: str
) -> None:
    """Refuse, in one line, an output budget that cannot sit beside the bare input (instructions, question
    and the task's items without any filler) within the length, or within the model's window."""
    floor = prompt_tokens(backend, template, question, prefix, items)
    need = floor + task.max_new_tokens
    window = int(getattr(backend, "context_window", 0) or 0)
    if window and need > window:
        raise UsageError(
            f"{task.label()}: the output budget of {task.max_new_tokens} tokens and the bare input of {floor} "
            f"do not fit the model window of {window} tokens; lower the budget or the instance size"
        )
    if need > length:
        raise UsageError(
            f"{task.label()}: length {length} is too short: the bare input takes {floor} tokens and the output "
            f"budget {task.max_new_tokens}; use a length of at least {need}"
        )


def label_with_sized_budget(task: Task, sized: int) -> str:
    """The task's label, leaving out ``max_new_tokens`` while it is the budget the task sized itself."""
    defaults = type(task)()
    changed = [
        f"{f.name}={getattr(task, f.name)}"
        for f in dataclasses.fields(task)
        if getattr(task, f.name) != getattr(defaults, f.name)
        and not (f.name == "max_new_tokens" and task.max_new_tokens == sized)
    ]
    return task.name + (f"({','.join(changed)})" if changed else "")

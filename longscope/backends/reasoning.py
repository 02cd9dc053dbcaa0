"""Strip reasoning traces (``<think>...</think>``) from a model's answer, so that only the answer is scored."""

from __future__ import annotations

import re

TAGS = ("think", "thinking")


def strip_reasoning(text: str, tags: tuple[str, ...] = TAGS) -> str:
    """The answer without its reasoning: closed ``<think>...</think>`` blocks are removed anywhere, a closing
    tag with no opening one drops everything before it (templates that open the block in the prompt), and an
    unterminated leading ``<think>`` block (the budget ran out mid-thought) leaves no answer at all.

    Text without any of these tags comes back unchanged, so models that do not reason are scored as before.
    """
    stripped = text
    for tag in tags:
        opening, closing = f"<{tag}>", f"</{tag}>"
        if opening not in stripped and closing not in stripped:
            continue
        first_close = stripped.find(closing)
        first_open = stripped.find(opening)
        if first_close >= 0 and (first_open < 0 or first_close < first_open):
            # The prompt opened the block (e.g. a generation prompt ending in "<think>\n").
            stripped = stripped[first_close + len(closing) :]
        stripped = re.sub(re.escape(opening) + r".*?" + re.escape(closing), "", stripped, flags=re.S)
        if stripped.lstrip().startswith(opening):
            stripped = ""  # thinking never finished: there is no answer to score
    return text if stripped == text else stripped.strip()

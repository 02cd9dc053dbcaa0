"""The token-by-token decoding loop that in-process backends share: end of sequence, stop strings, budget."""

from __future__ import annotations

from collections.abc import Callable

from longscope.core import GenerationRequest


def decode_tokens(
    first: int,
    step: Callable[[int], int],
    is_end: Callable[[int], bool],
    detokenize: Callable[[list[int]], str],
    request: GenerationRequest,
) -> tuple[list[int], str, str]:
    """Feed each chosen token back through ``step`` until the end of sequence, a stop string or the output
    budget. Returns the generated ids, the text (cut before a stop string) and the finish reason."""
    generated: list[int] = []
    token = first
    while not is_end(token):
        generated.append(token)
        if request.stop:
            text = detokenize(generated)
            hit = min((text.find(s) for s in request.stop if s in text), default=-1)
            if hit >= 0:
                return generated, text[:hit], "stop"
        if len(generated) >= request.max_new_tokens:
            return generated, detokenize(generated), "length"
        token = step(token)
    return generated, detokenize(generated), "stop"

"""What the long-output writing methods share: the longest prompt a sample sends, and one writing call that
keeps the task's system prompt and decoding settings."""

from __future__ import annotations

from longscope.core import Backend, Generation, GenerationRequest, Sample


def longest_prompt(sample: Sample, backend: Backend) -> int:
    """Tokens of the longest of the sample's turn prompts, chat template and answer prefix included."""
    return max(
        backend.count_tokens(backend.render(sample.messages(turn), sample.turns[turn].answer_prefix))
        for turn in range(len(sample.turns))
    )


def instruction_of(request: GenerationRequest) -> str:
    """The task's own prompt for this turn: the request's last user message, context and question in it."""
    return request.messages[-1]["content"]


def ask(
    backend: Backend, request: GenerationRequest, prompt: str, max_new_tokens: int, answer_prefix: str = ""
) -> Generation:
    """One call with ``prompt`` as the user message, under the request's system prompt, template switch, seed
    and temperature."""
    system = [m for m in request.messages[:-1] if m["role"] == "system"]
    return backend.generate(
        GenerationRequest(
            messages=[*system, {"role": "user", "content": prompt}],
            answer_prefix=answer_prefix,
            max_new_tokens=max_new_tokens,
            chat=request.chat,
            seed=request.seed,
            temperature=request.temperature,
        )
    )

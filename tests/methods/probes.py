"""What method tests probe: the logits a method gives a question chunk and one decode step after it."""

from __future__ import annotations

import torch

from longscope.methods import make_method


@torch.inference_mode()
def run_logits(backend, spec: str, prompt_ids) -> tuple[torch.Tensor, torch.Tensor, object]:
    """Logits of the question chunk (many query tokens at once) and of one decode step after it, through the
    method's own prefill and attending hooks."""
    ids, split = prompt_ids
    model, method = backend.model, make_method(spec)
    state = method.prefill(model, torch.tensor([ids[:split]]), method.new_cache(model))
    with method.attending(model, state):
        chunk = model(
            input_ids=torch.tensor([ids[split:]]),
            past_key_values=state.cache,
            position_ids=torch.arange(split, len(ids)).unsqueeze(0),
        ).logits
        step = model(
            input_ids=chunk[:, -1:].argmax(-1),
            past_key_values=state.cache,
            position_ids=torch.tensor([[len(ids)]]),
        ).logits
    return chunk, step, state

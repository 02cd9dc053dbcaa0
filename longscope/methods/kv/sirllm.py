"""``sirllm``: SirLLM's token-entropy memory: across a conversation's turns the cache keeps the sinks and the
tokens the model found most surprising, older turns' scores decaying each turn (needs ``--mode multi-turn``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from longscope.core import Backend, Sample, UsageError
from longscope.methods.base import ContextState, KVMethod, growing_cache, layer_lengths

# Hidden states turned into log-probabilities at once: bounds the vocabulary-sized logits in memory.
_LOGIT_ROWS = 256


@dataclass(frozen=True)
class SirLLM(KVMethod):
    """SirLLM (Yao et al., 2024, "Streaming Infinite Retentive LLM").

    Each token's entropy is its negative log-likelihood under the model, −log p(x_t | x_<t) (the paper's
    token entropy; the first token, with nothing before it, counts as a sink). After the context's prefill,
    and again at the start of every later turn, the cache is cut back to ``kept(n)`` entries of the context
    size n: the first ``sinks`` tokens, the ``recent`` newest ones and, of the rest, those of highest entropy.
    Before each cut, the scores of the entries already kept are multiplied by ``decay`` (the paper's memory
    decay: an old turn's tokens must stay surprising to stay), the turn just added keeps its own. Defaults
    follow the paper's runs: 4 sinks, no recent window, decay 0.9 (its rock-paper-scissors setting; 1 for
    the grocery task, 0.7 for DailyDialog). The same tokens are kept in every layer and head.

    Departure: entries keep their original positions (the paper, built on StreamingLLM, renumbers the kept
    cache's positions), so the method does not claim to read past the trained window.
    """

    name = "sirllm"
    description = (
        "SirLLM: keep sinks + highest token-entropy tokens across turns, older turns' scores decaying"
    )
    sinks: int = 4
    recent: int = 0
    decay: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sinks < 0 or self.recent < 0:
            raise UsageError(
                f"method sirllm: sinks and recent must be 0 or more (got {self.sinks}, {self.recent})"
            )
        if not 0.0 < self.decay <= 1.0:
            raise UsageError(f"method sirllm: decay must be in (0, 1] (got {self.decay:g})")

    # -- checks ----------------------------------------------------------------------------------------

    def check_mode(self, mode: str) -> None:
        if mode != "multi-turn":
            raise UsageError(
                f"method {self.label()} keeps its memory across a conversation's turns; run it with "
                f"--mode multi-turn (this run is {mode})"
            )

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        super().check_sample(sample, backend)
        if len(sample.turns) < 2:
            raise UsageError(
                f"method {self.label()} needs a conversation, and {sample.id} has a single turn; give it a "
                "task with several questions, e.g. niah(questions=4)"
            )

    # -- hooks -----------------------------------------------------------------------------------------

    new_cache = growing_cache

    @torch.no_grad()
    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        context = int(input_ids.shape[1])
        self.check_context(context, "this request")
        hidden = model.model(input_ids=input_ids, past_key_values=cache, use_cache=True).last_hidden_state
        scores, last = token_entropy(model, hidden, input_ids[0], None)
        state = ContextState(
            cache=cache,
            context_tokens=context,
            extra={"scores": scores, "last_log_probs": last, "budget": self.kept(context)},
        )
        self.cut(state, decay=False)
        state.layer_lengths = layer_lengths(cache)
        return state

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        """Cut the memory back to its budget (older scores decayed), then score every token fed after it."""
        if state.extra["scores"].numel() > state.extra["budget"]:
            self.cut(state, decay=True)

        def score(_module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            fed, last = token_entropy(model, output.last_hidden_state, ids[0], state.extra["last_log_probs"])
            state.extra["scores"] = torch.cat([state.extra["scores"], fed])
            state.extra["last_log_probs"] = last

        handle = model.model.register_forward_hook(score, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def cut(self, state: ContextState, decay: bool) -> None:
        """Keep the sinks, the recent entries and the highest-scoring rest, ``budget`` entries in all."""
        scores: torch.Tensor = state.extra["scores"]
        if decay:
            # Entries kept from earlier turns decay; those added since the last cut keep their scores.
            older = state.extra.get("kept_count", scores.numel())
            scores = torch.cat([scores[:older] * self.decay, scores[older:]])
        held = scores.numel()
        keep = chosen(scores, state.extra["budget"], self.sinks, self.recent)
        if keep.numel() < held:
            for layer in state.cache.layers:
                layer.keys = layer.keys[:, :, keep.to(layer.keys.device)]
                layer.values = layer.values[:, :, keep.to(layer.values.device)]
        state.extra["scores"] = scores[keep]
        state.extra["kept_count"] = keep.numel()

    def restore(self, state: ContextState) -> None:
        super().restore(state)
        state.extra["scores"] = state.extra["scores"][: state.layer_lengths[0]]

    def drop_last(self, state: ContextState, tokens: int) -> None:
        super().drop_last(state, tokens)
        state.extra["scores"] = state.extra["scores"][: state.cache.layers[0].get_seq_length()]
        state.extra["kept_count"] = min(state.extra.get("kept_count", 0), state.extra["scores"].numel())


def chosen(scores: torch.Tensor, budget: int, sinks: int, recent: int) -> torch.Tensor:
    """Sorted indices of the entries kept: the first ``sinks``, the last ``recent``, then the highest scores
    (earlier entries first among equals) until ``budget``."""
    held = scores.numel()
    if held <= budget:
        return torch.arange(held)
    fixed = torch.zeros(held, dtype=torch.bool)
    fixed[: min(sinks, budget)] = True
    fixed[held - min(recent, max(0, budget - int(fixed.sum()))) :] = True
    rest = budget - int(fixed.sum())
    ranked = torch.where(fixed, float("-inf"), scores.float().cpu())
    order = torch.argsort(-ranked, stable=True)[: max(0, rest)]
    fixed[order] = True
    return torch.nonzero(fixed).flatten()


def token_entropy(model: Any, hidden: torch.Tensor, ids: torch.Tensor, before: torch.Tensor | None):
    """−log p of each fed token given the ones before it, from the model's head over ``hidden`` (1, q, d); the
    first token is scored by ``before`` (the previous forward's last log-probabilities), +inf without one.
    Returns the scores (on the CPU) and this forward's last log-probabilities."""
    head = model.get_output_embeddings()
    ids = ids.to(hidden.device)
    scores = torch.empty(ids.numel(), dtype=torch.float32)
    scores[0] = float("inf") if before is None else -float(before[ids[0]])
    last = None
    for start in range(0, ids.numel(), _LOGIT_ROWS):
        end = min(ids.numel(), start + _LOGIT_ROWS)
        log_probs = torch.log_softmax(head(hidden[0, start:end]).float(), -1)
        following = ids[start + 1 : end + 1]
        picked = log_probs[: following.numel()].gather(-1, following[:, None])[:, 0]
        scores[start + 1 : start + 1 + following.numel()] = -picked.cpu()
        last = log_probs[-1]
    return scores, last

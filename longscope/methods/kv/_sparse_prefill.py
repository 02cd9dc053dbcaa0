"""What every sparse prefill shares: an attention function that computes only the key blocks a pattern keeps for
each query block, the tally of attention work computed against dense causal attention, and the check that a
model's attention can be replaced by it."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from transformers import AttentionInterface

from longscope.core import Backend, UsageError
from longscope.methods.base import ContextState, KVMethod, growing_cache, layer_lengths
from longscope.methods.kv._attention_switch import attention_function

ATTENTION_NAME = "longscope_sparse_prefill"
# Attention implementations whose computation is plain causal softmax attention, which the block-sparse function
# reproduces exactly when its pattern keeps everything; any other (flex attention with a block mask, paged or
# hub kernels) carries semantics a replacement would silently drop.
REPLACEABLE = ("eager", "sdpa", "flash_attention_2", "flash_attention_3")


@dataclass
class Tally:
    """Attention score elements (query × key pairs, summed over query heads and layers) of the multi-token
    forwards: those computed, and those dense causal attention would have computed."""

    computed: float = 0.0
    dense: float = 0.0

    @property
    def skipped(self) -> float:
        return 0.0 if self.dense <= 0 else max(0.0, 1.0 - self.computed / self.dense)


@dataclass
class _Run:
    method: SparsePrefill
    tally: Tally
    dense_chunks: bool = False  # multi-token forwards attend densely (tri-shape's question)
    scratch: dict[str, Any] = field(default_factory=dict)


_ACTIVE: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("longscope_sparse_run", default=None)


def dense_causal(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float) -> torch.Tensor:
    """Plain causal attention of the last ``q`` positions over every key: (B, H, q, D)."""
    batch, heads, steps, dim = query.shape
    kv_heads, total = key.shape[1], key.shape[2]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, steps, dim)
    scores = torch.matmul(grouped, key[:, :, None].transpose(-1, -2)).float() * scaling
    if steps > 1:
        at = torch.arange(total - steps, total, device=query.device)
        allowed = torch.arange(total, device=query.device)[None, :] <= at[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = scores.softmax(-1).to(value.dtype)
    return torch.matmul(weights, value[:, :, None]).reshape(batch, heads, steps, dim)


def attend_gathered(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, allowed: torch.Tensor, scaling: float
) -> torch.Tensor:
    """Softmax attention of a query block over the gathered keys only; ``allowed`` (block, gathered) masks the
    pairs inside the gather that the pattern leaves out. Leading (batch, head) axes broadcast; torch's fused
    attention does the work, so a block costs what its gather holds."""
    return torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=allowed, scale=scaling
    )


def _sparse_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    *_: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention function transformers calls under ``_attn_implementation = "longscope_sparse_prefill"``:
    multi-token forwards go through the method's pattern, single decode steps attend densely."""
    run = _ACTIVE.get()
    if run is None:
        raise RuntimeError("sparse prefill attention is switched on outside its method")
    if query.shape[0] != 1:
        raise ValueError("a sparse prefill runs one context at a time (batch size 1)")
    scaling = float(kwargs.get("scaling") or query.shape[-1] ** -0.5)
    steps, total = query.shape[2], key.shape[2]
    if steps == 1:
        output = dense_causal(query, key, value, scaling)
    else:
        # Every causal (query, key) pair, per query head: what dense attention computes for this forward.
        run.tally.dense += query.shape[1] * (steps * (total - steps) + steps * (steps + 1) / 2)
        if run.dense_chunks:
            output = dense_causal(query, key, value, scaling)
            run.tally.computed += query.shape[1] * (steps * (total - steps) + steps * (steps + 1) / 2)
        else:
            output = run.method.sparse(query, key, value, scaling, run.tally)
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, _sparse_attention)


@dataclass(frozen=True)
class SparsePrefill(KVMethod):
    """A prefill that computes attention only where a pattern says, storing every KV entry as full does: it
    changes the time to first token, never the cache the answer is decoded over (decoding attends densely).

    Takes no ratio or budget (nothing is removed or masked from the cache); its own parameters shape the
    pattern. Subclasses implement ``sparse``: attention for one multi-token forward under their pattern.
    """

    # The question chunk after the context is attended densely (tri-shape) or through the pattern (the rest).
    dense_question: ClassVar[bool] = False
    block: int = 128

    def __post_init__(self) -> None:
        if self.ratio is not None or self.budget is not None:
            raise UsageError(
                f"method {self.name} changes only how the prefill attends and keeps every KV entry; it takes "
                f"no ratio or budget: shape its pattern with its parameters, e.g. {self.example()}"
            )
        super().__post_init__()
        if self.block < 1:
            raise UsageError(f"method {self.name}: block must be at least 1 query token (got {self.block})")

    def example(self) -> str:
        return f"{self.name}(block=64)"

    def sparse(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float, tally: Tally
    ) -> torch.Tensor:
        raise NotImplementedError

    # -- checks ----------------------------------------------------------------------------------------

    def check_backend(self, backend: Backend) -> None:
        super().check_backend(backend)
        check_replaceable(self.label(), backend.model)

    # -- the KV hooks ----------------------------------------------------------------------------------

    # Plain growing layers: the pattern reads the whole prefix of every layer.
    new_cache = growing_cache

    @torch.no_grad()
    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        tally = Tally()
        with attention_function(model, ATTENTION_NAME, _ACTIVE, _Run(self, tally)):
            model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        return ContextState(
            cache=cache,
            context_tokens=int(input_ids.shape[1]),
            layer_lengths=layer_lengths(cache),
            extra={"sparse_tally": tally, "sparse_context_tally": Tally(tally.computed, tally.dense)},
        )

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        """The question chunk goes through the pattern too (or densely: tri-shape); decode steps are dense."""
        run = _Run(self, state.extra["sparse_tally"], dense_chunks=self.dense_question)
        with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
            yield

    def restore(self, state: ContextState) -> None:
        super().restore(state)
        # The answer just given is measured over the context's prefill and its question; the next question
        # starts again from the context's prefill alone.
        state.extra["answered_tally"] = state.extra["sparse_tally"]
        context = state.extra["sparse_context_tally"]
        state.extra["sparse_tally"] = Tally(context.computed, context.dense)

    def measurements(self, state: ContextState) -> dict[str, Any]:
        tally = state.extra.pop("answered_tally", None) or state.extra["sparse_tally"]
        return {"attention_flops_skipped": tally.skipped}


def check_replaceable(label: str, model: Any, doing: str = "computes a block-sparse prefill") -> None:
    """Refuse a model whose attention the method's own attention function cannot stand in for, in one line;
    ``doing`` says what that function does."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    if implementation not in REPLACEABLE:
        raise UsageError(
            f"method {label} {doing} in place of the model's attention, which runs "
            f"{implementation!r}; load the model with attn_implementation sdpa or eager"
        )
    if (
        getattr(config, "attn_logit_softcapping", None)
        or getattr(config, "sliding_window", None)
        and any("sliding" in str(kind) for kind in (getattr(config, "layer_types", None) or ["sliding"]))
    ):
        raise UsageError(
            f"method {label}: this model's attention uses sliding windows or logit soft-capping, which its "
            "own attention function does not reproduce; use full or a KV method"
        )

"""What every long-context method is: a ratio or a budget, a label, checks, and (in-model) the KV-cache hooks."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, UsageError


@dataclass(frozen=True)
class Method:
    """A long-context strategy, configured by how much of the context's KV cache it drops (or hides).

    ``ratio`` is the fraction of the context's entries removed or masked, in [0, 1); ``budget`` the number of
    context entries kept instead. One of the two, or neither (the method's own default). Subclasses are
    dataclasses whose extra fields are the method's own parameters.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    in_model: ClassVar[bool] = True  # changes attention or the KV cache: needs an in-process backend
    # True when the method lets the model read past its trained window (attention sinks + local window).
    extends_window: ClassVar[bool] = False
    ratio: float | None = None
    budget: int | None = None

    def __post_init__(self) -> None:
        if self.ratio is not None and self.budget is not None:
            raise UsageError(f"method {self.name}: give a ratio or a budget, not both")
        if self.ratio is not None and not 0.0 <= self.ratio < 1.0:
            raise UsageError(
                f"method {self.name}: ratio {self.ratio:g} is outside [0, 1); it is the fraction of the "
                "context's KV entries dropped, e.g. snapkv:0.5"
            )
        if self.budget is not None and self.budget < 1:
            raise UsageError(f"method {self.name}: budget must be at least 1 token (got {self.budget})")

    # -- naming ----------------------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The method's own parameters that differ from their defaults (ratio and budget apart)."""
        defaults = {
            f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING
        }
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("ratio", "budget") and getattr(self, f.name) != defaults.get(f.name)
        }

    def label(self) -> str:
        """The name a row is stored under: ``snapkv:0.5``, ``snapkv:budget=1024``, ``squeezed(levels=2):0.25``."""
        opts = self.options()
        text = self.name + (f"({','.join(f'{k}={v}' for k, v in opts.items())})" if opts else "")
        if self.budget is not None:
            return f"{text}:budget={self.budget}"
        if self.ratio is not None:
            return f"{text}:{self.ratio:g}"
        return text

    # -- how much of the context is kept ---------------------------------------------------------------

    @property
    def removes_nothing(self) -> bool:
        return self.budget is None and not self.ratio

    def kept(self, context_tokens: int) -> int:
        """Context entries kept (per layer and KV head): the budget, or ``int(n × (1 − ratio))`` as kvpress."""
        if self.budget is not None:
            return min(self.budget, context_tokens)
        return int(context_tokens * (1.0 - (self.ratio or 0.0)))

    def effective_ratio(self, context_tokens: int) -> float:
        """The ratio that keeps exactly ``kept(context_tokens)`` entries under kvpress's ``int(n × (1 − r))``:
        half an entry of slack keeps float error from rounding the count down."""
        keep = self.kept(context_tokens)
        if keep >= context_tokens:
            return 0.0
        return (context_tokens - keep - 0.5) / context_tokens

    # -- checks before any sample runs -----------------------------------------------------------------

    def check_backend(self, backend: Backend) -> None:
        if self.in_model and not callable(getattr(backend, "session", None)):
            raise UsageError(
                f"method {self.label()} changes the model's attention or KV cache and needs an in-process "
                f"model (smollm2 or hf:PATH); {backend.kind} backends accept only prompt-level methods and full"
            )

    def check_context(self, context_tokens: int, sample_id: str) -> None:
        if self.budget is not None and self.budget > context_tokens:
            raise UsageError(
                f"method {self.label()}: budget {self.budget} is larger than the context of {sample_id} "
                f"({context_tokens} tokens); give a budget below {context_tokens} or a ratio"
            )


@dataclass
class ContextState:
    """What a KV method left after the context's prefill: the cache, how many context tokens went in, and
    whatever the method keeps for the question (cluster centroids, per-layer lengths)."""

    cache: Any
    context_tokens: int
    layer_lengths: list[int] = dataclasses.field(default_factory=list)  # physical entries per layer after it
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class KVMethod(Method):
    """An in-model method: hooks the in-process backend's prefill, attention and cache (see kv_session).

    The session calls ``new_cache`` → ``prefill`` once per context, then runs every question and answer token
    inside ``attending``; ``restore`` brings the cache back to the context state between questions.
    """

    def new_cache(self, model: Any) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=model.config)

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        """Run the context through the model into ``cache``; the default keeps every entry (``full``)."""
        model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        return ContextState(
            cache=cache, context_tokens=int(input_ids.shape[1]), layer_lengths=layer_lengths(cache)
        )

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        """Active while question and answer tokens run over the cache; the default changes nothing."""
        yield

    def restore(self, state: ContextState) -> None:
        """Cut the cache back to the context state, as the prefill left it."""
        for layer, length in zip(state.cache.layers, state.layer_lengths, strict=True):
            layer.crop(length)

    def drop_last(self, state: ContextState, tokens: int) -> None:
        """Remove the last ``tokens`` appended after the context (the generated ones, or a stale turn)."""
        for layer in state.cache.layers:
            layer.crop(layer.get_seq_length() - tokens)

    def masked_entries(self, state: ContextState) -> int:
        """Context entries held but hidden from attention in the last step (summed over layers and heads)."""
        return 0


def layer_lengths(cache: Any) -> list[int]:
    return [layer.get_seq_length() for layer in cache.layers]


def kv_heads(model: Any) -> int:
    config = model.config
    return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)

"""``int8`` / ``int4``: KIVI KV-cache quantisation (keys per channel, values per token, a full-precision residual)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import UsageError
from longscope.methods.base import ContextState, KVMethod, layer_lengths
from longscope.methods.kv._quantized_cache import QuantizedKVLayer


@dataclass(frozen=True)
class QuantizedKV(KVMethod):
    """KV-cache quantisation after KIVI (Liu et al., 2024): keys are quantised per channel (minimum and maximum
    of each channel over groups of ``group_size`` tokens), values per token (over groups of ``group_size``
    channels, or the largest divisor of head_dim below it), asymmetrically (a scale and a zero point per group,
    kept in the model dtype), and the most recent context tokens stay in full precision (KIVI's residual R).
    The cache really holds the small tensors: uint8 codes (int4: two codes per byte), statistics, residual;
    attention reads them dequantised. ``held_bytes`` is what those tensors occupy.

    Nothing is removed or masked (kv_removed = kv_masked = 0), so ``ratio`` and ``budget`` mean something else
    here: ``budget`` = how many of the most recent context tokens stay in full precision (exactly that many;
    the older ones are quantised in groups of ``group_size`` tokens counted from the start of the context, the
    newest of which may be shorter); ``ratio`` = the fraction of the context stored quantised (⌊n × ratio⌋
    oldest tokens, the rest in full precision; ratio 0 is the full cache); neither = KIVI's default R = 128
    recent tokens in full precision (the whole context when it is shorter).

    Question and answer tokens appended after the context are never quantised: they stay in the residual
    until ``restore`` / ``drop_last`` crops them, so a multi-request question leaves the quantised context
    exactly as the prefill left it (the same tensors), and dropping tokens only ever shortens the residual.
    In multi-turn use the conversation after the context likewise stays in full precision. (KIVI also
    quantises generated tokens group by group once the residual fills; the layer does that when used on its
    own, the session does not, since answers here are short.) ``kv_bytes`` is measured after the answer, so it
    includes the question and answer tokens held in full precision.
    """

    description = "KIVI KV-cache quantisation: keys per channel, values per token, recent tokens exact"
    bits: ClassVar[int] = 8
    default_residual: ClassVar[int] = 128  # KIVI's R
    group_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.group_size < 1:
            raise UsageError(
                f"method {self.name}: group_size must be at least 1 token (got {self.group_size})"
            )

    # -- how much stays exact ----------------------------------------------------------------------------

    def kept(self, context_tokens: int) -> int:
        """Every context entry is kept (quantised or not): a quantiser removes nothing."""
        return context_tokens

    def full_precision(self, context_tokens: int) -> int:
        """Context tokens kept in full precision (the residual) after the prefill, per layer."""
        if self.budget is not None:
            return min(self.budget, context_tokens)
        if self.ratio is not None:
            return context_tokens - math.floor(context_tokens * self.ratio + 1e-9)
        return min(self.default_residual, context_tokens)

    # -- hooks -------------------------------------------------------------------------------------------

    def new_cache(self, model: Any) -> Any:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        config = model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        if self.bits == 4 and head_dim % 2:
            raise UsageError(
                f"method {self.label()}: int4 packs two codes per byte and needs an even head_dim; this "
                f"model's is {head_dim}; use int8"
            )
        cache = DynamicCache(config=model.config)
        # Sliding-window layers keep their own (short) cache; every full-attention layer is quantised.
        cache.layers = [
            QuantizedKVLayer(self.bits, self.group_size, self.default_residual) if type(layer) is DynamicLayer
            else layer
            for layer in cache.layers
        ]  # fmt: skip
        return cache

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        context = int(input_ids.shape[1])
        quantised = context - self.full_precision(context)
        for layer in cache.layers:
            if isinstance(layer, QuantizedKVLayer):
                layer.plan(quantised)
        model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        return ContextState(
            cache=cache,
            context_tokens=context,
            layer_lengths=layer_lengths(cache),
            extra={"quantised_tokens": quantised},
        )

    def held_bytes(self, state: ContextState) -> int:
        """Bytes of every tensor the cache holds: codes, scales, zero points and the full-precision residual."""
        total = 0
        for layer in state.cache.layers:
            if isinstance(layer, QuantizedKVLayer):
                total += layer.held_bytes()
            else:
                total += sum(
                    t.numel() * t.element_size() for t in (layer.keys, layer.values) if t is not None
                )
        return int(total)


@dataclass(frozen=True)
class Int8(QuantizedKV):
    name = "int8"
    description = "KIVI 8-bit KV cache: keys per channel, values per token, the last 128 tokens exact"
    bits = 8


@dataclass(frozen=True)
class Int4(QuantizedKV):
    name = "int4"
    description = "KIVI 4-bit KV cache (two codes a byte): keys per channel, values per token, last 128 exact"
    bits = 4

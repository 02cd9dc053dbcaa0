"""``lambda``: Λ-shaped attention (attention sinks + a local window) with LM-Infinite's distance cap, so a model
reads inputs longer than its trained window while holding only sinks + window KV entries."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.models.llama.modeling_llama import rotate_half

from longscope.core import Backend, UsageError
from longscope.methods.base import ContextState, KVMethod, growing_cache, layer_lengths
from longscope.methods.kv._attention_switch import attention_function
from longscope.methods.kv._flash_parts import FLASH_CPU, FUSED_DTYPES, causal_part, flash_part, merge_parts

ATTENTION_NAME = "longscope_lambda"
# Scores materialised at once per query block (fp32 elements): bounds attention memory whatever the window.
_SCORE_ELEMENTS = 1 << 26
# CPU's flash attention returns the log-sum-exp beside the output, so the local band and the sinks can be attended
# apart and merged exactly; without that op, on other devices or dtypes, the eager blocks run. Tests switch the
# fused path off to compare the two.
FUSED_ON_CPU = True
# How many trained windows a plan may ask Λ-attention to read: nothing in the method stops there, but the
# distance cap is untested beyond it, so longer lengths are refused rather than run on trust.
READ_MULTIPLE = 8


@dataclass(frozen=True)
class Geometry:
    """The shape of the Λ for one context: ``window`` None means nothing is removed (the window grows)."""

    sinks: int
    window: int | None
    cap: int
    chunk: int


@dataclass(frozen=True)
class LambdaShaped(KVMethod):
    """Λ-shaped attention after LM-Infinite (Han et al., 2023) and StreamingLLM's attention sinks.

    With neither a ratio nor a budget it is LM-Infinite's geometry (the official ``convert_llama_model``):
    ``n_local`` = the trained window T, so a query attends the keys at distances 0 … T − 1 (``window`` = T − 1)
    plus the ``sinks`` first tokens, and a sink farther than that is scored at distance ``cap`` = T. Within the
    trained window this is exactly full attention; past it, every older entry is evicted. Departures from the
    official code: 4 sinks by default (the official drop-in uses 10 global tokens, its scripts 100; give
    ``lambda(sinks=10)`` for the drop-in's), and evicted entries are removed from the cache instead of masked.

    With a ratio or a budget, of the ``kept(n)`` context entries the first ``sinks`` tokens stay for good and the
    rest is a local window of the most recent ``window = kept − sinks`` entries; everything else is evicted
    (removed, not masked). A query at position i attends the sinks and the keys j with 0 ≤ i − j ≤ window, i.e.
    the ``window`` entries before it and itself, which are exactly what the cache holds. Keys keep their original
    RoPE positions; a sink at a distance above ``cap`` (there by default the window, never above the model's
    trained window) is scored as if it were at distance ``cap``. Ratio 0 (or a budget equal to the context)
    removes nothing: no eviction, only the cap. The context is prefilled in chunks of at most ``window`` tokens,
    so prefill memory is bounded by the window and not by the input. The question and the answer slide the
    window in the same way.
    """

    name = "lambda"
    description = (
        "attention sinks + a sliding local window with LM-Infinite's distance cap; reads past the window"
    )
    extends_window = True
    sinks: int = 4
    cap: int | None = None
    chunk: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sinks < 0:
            raise UsageError(f"method lambda: sinks must be 0 or more (got {self.sinks})")
        if self.cap is not None and self.cap < 1:
            raise UsageError(f"method lambda: cap must be at least 1 token (got {self.cap})")
        if self.chunk < 1:
            raise UsageError(f"method lambda: chunk must be at least 1 token (got {self.chunk})")
        if self.budget is not None and self.sinks >= self.budget:
            raise UsageError(
                f"method lambda: {self.sinks} sinks leave no local window in a budget of {self.budget}; "
                "give a budget above the sinks or fewer sinks, e.g. lambda(sinks=4):budget=1024"
            )

    # -- geometry ---------------------------------------------------------------------------------------

    def geometry(self, model: Any, context_tokens: int) -> Geometry:
        """Sinks, local window, distance cap and prefill chunk for a context of ``context_tokens`` on ``model``."""
        trained = trained_window(model)
        if self.cap is not None and self.cap > trained:
            raise UsageError(
                f"method {self.label()}: cap {self.cap} is above the model's trained window of {trained} tokens; "
                f"give a cap of at most {trained}"
            )
        if self.ratio is None and self.budget is None:
            # LM-Infinite: n_local = trained keys (distances 0 … trained − 1), limit_distance = trained.
            local = trained - 1
            cap = self.cap if self.cap is not None else trained
            return Geometry(sinks=self.sinks, window=local, cap=cap, chunk=min(self.chunk, local))
        keep = self.kept(context_tokens)
        window: int | None = None
        if keep < context_tokens:
            if keep <= self.sinks:
                raise UsageError(
                    f"method {self.label()}: keeping {keep} of {context_tokens} context entries leaves no local "
                    f"window beside {self.sinks} sinks; give a smaller ratio, a larger budget or fewer sinks"
                )
            window = keep - self.sinks
        cap = self.cap if self.cap is not None else min(window or trained, trained)
        return Geometry(sinks=self.sinks, window=window, cap=cap, chunk=min(self.chunk, window or self.chunk))

    def extended_window(self, trained: int) -> int | None:
        # Memory is bounded by the window at any length; the claim is a plan limit, the longest reach tried.
        return READ_MULTIPLE * trained

    def check_backend(self, backend: Backend) -> None:
        super().check_backend(backend)
        if not backend.capabilities.in_process_model:
            return
        model = backend.model
        rotary_module(model)
        if self.cap is not None and self.cap > trained_window(model):
            raise UsageError(
                f"method {self.label()}: cap {self.cap} is above the model's trained window of "
                f"{trained_window(model)} tokens; give a cap of at most {trained_window(model)}"
            )

    # -- the KV hooks -----------------------------------------------------------------------------------

    # Plain growing layers on every model: a model's own sliding-window layers would evict the sinks.
    new_cache = growing_cache

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        """The context in chunks of at most the window; after each chunk every layer keeps sinks + window."""
        total = int(input_ids.shape[1])
        self.check_context(total, "this sample")
        geometry = self.geometry(model, total)
        state = ContextState(cache=cache, context_tokens=total, extra={"geometry": geometry, "positions": []})
        device = input_ids.device
        with torch.no_grad(), self.attending(model, state):
            for start in range(0, total, geometry.chunk):
                end = min(total, start + geometry.chunk)
                model.model(
                    input_ids=input_ids[:, start:end],
                    past_key_values=cache,
                    position_ids=torch.arange(start, end, device=device).unsqueeze(0),
                    use_cache=True,
                )
        state.layer_lengths = layer_lengths(cache)
        if geometry.window is not None:
            # The question slides the window past context entries; this copy (sinks + window) brings them back.
            state.extra["snapshot"] = [
                (layer.keys.clone(), layer.values.clone(), positions.clone())
                for layer, positions in zip(cache.layers, state.extra["positions"], strict=True)
            ]
        return state

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        """Switch the model's attention to the Λ function for the duration, and back afterwards, even on error."""
        run = _Run(state, rotary_module(model))
        with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
            yield

    def restore(self, state: ContextState) -> None:
        """Back to the cache the prefill left: a copy of the saved sinks + window (the question slid past them)."""
        snapshot = state.extra.get("snapshot")
        if snapshot is None:  # nothing was ever evicted: cutting the appended entries is enough
            super().restore(state)
            positions = state.extra["positions"]
            for index, length in enumerate(state.layer_lengths):
                positions[index] = positions[index][:length]
            return
        for index, (layer, (keys, values, positions)) in enumerate(
            zip(state.cache.layers, snapshot, strict=True)
        ):
            layer.keys, layer.values = keys.clone(), values.clone()
            state.extra["positions"][index] = positions.clone()

    def drop_last(self, state: ContextState, tokens: int) -> None:
        """Forget the last ``tokens`` positions (generated tokens, a stale turn) by cropping their entries.

        They are always in the cache (the window holds the newest entries), but the older entries they pushed
        out of the window are gone for good: the window then holds fewer than ``window`` entries until new
        tokens refill it. If more tokens are dropped than the window holds, every local entry goes (and the sinks
        too when the drop reaches back into them), and attention restarts from what is left.
        """
        if tokens <= 0:
            return
        positions = state.extra["positions"]
        for index, layer in enumerate(state.cache.layers):
            held = positions[index]
            if held.numel() == 0:
                continue
            cut = int(held[-1]) + 1 - tokens
            stay = int((held < cut).sum())
            layer.crop(stay)
            positions[index] = held[:stay]


def trained_window(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "max_position_embeddings", None)
    if not window:
        raise UsageError("method lambda needs the model's trained window (config.max_position_embeddings)")
    return int(window)


def rotary_module(model: Any) -> Any:
    """The model's rotary embedding (the module holding ``inv_freq``): the cap re-rotates queries with it."""
    for module in model.modules():
        if isinstance(getattr(module, "inv_freq", None), torch.Tensor):
            return module
    raise UsageError(
        "method lambda needs a model with rotary position embeddings (Llama-style RoPE); this one has none"
    )


_ACTIVE: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("longscope_lambda_run", default=None)


class _Run:
    """One pass of Λ attention over a context state: computes each layer's attention, then evicts its cache.

    Positions are bookkept on the CPU (one small tensor per layer), so choosing keys and building masks never
    waits on the accelerator; only the masks and the sink rotations travel to it.
    """

    def __init__(self, state: ContextState, rotary: Any) -> None:
        self.state = state
        self.geometry: Geometry = state.extra["geometry"]
        self.rotary = rotary
        self._position_ids: Any = None  # the last forward's position_ids, shared by all its layers
        self._positions_cpu = torch.empty(0, dtype=torch.long)

    def __call__(
        self, module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs: Any
    ):
        layer_index = int(module.layer_idx)
        positions: list[torch.Tensor] = self.state.extra["positions"]
        while len(positions) <= layer_index:
            positions.append(torch.empty(0, dtype=torch.long))
        held = positions[layer_index]
        steps = query.shape[-2]
        position_ids = kwargs.get("position_ids")
        if position_ids is not None:
            if position_ids is not self._position_ids:
                self._position_ids = position_ids
                self._positions_cpu = position_ids[0].to(device="cpu", dtype=torch.long)
            new = self._positions_cpu[-steps:]
        else:
            first = int(held[-1]) + 1 if held.numel() else 0
            new = torch.arange(first, first + steps)
        key_positions = torch.cat([held, new])
        if key_positions.numel() != key.shape[-2]:
            raise RuntimeError(
                f"lambda attention: layer {layer_index} holds {key.shape[-2]} entries but tracks "
                f"{key_positions.numel()} positions; was the cache changed outside the method?"
            )
        scaling = kwargs.get("scaling") or query.shape[-1] ** -0.5
        output = self.attend(query, key, value, new, key_positions, scaling)
        positions[layer_index] = self.evict(self.state.cache.layers[layer_index], key_positions)
        return output, None

    # -- attention --------------------------------------------------------------------------------------

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        """Λ attention over one forward's queries: fused kernels on CPU where torch has them, else eager blocks."""
        fused = FUSED_ON_CPU and FLASH_CPU is not None
        if fused and query.device.type == "cpu" and query.dtype in FUSED_DTYPES:
            return self.attend_fused(query, key, value, query_positions, key_positions, scaling)
        return self.attend_eager(query, key, value, query_positions, key_positions, scaling)

    def attend_fused(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        """Λ attention as exact parts merged by their log-sum-exp: the local band through CPU flash attention, the
        few sinks eagerly with separable capped scores. Only the keys in each query block's band are scored."""
        batch, heads, steps, dim = query.shape
        kv_heads = key.shape[1]
        grouped = query.reshape(batch, kv_heads, heads // kv_heads, steps, dim)
        sinks = int((key_positions < self.geometry.sinks).sum())
        sink_positions = key_positions[:sinks]
        local_positions = key_positions[sinks:]
        local_keys, local_values = key[:, :, sinks:], value[:, :, sinks:]
        sink_keys, sink_values = key[:, :, None, :sinks], value[:, :, None, :sinks]
        # Each sink key turned back to position 0 once per forward: capped scores are then one matmul per block.
        sink_keys_at_zero = self.rotated(sink_keys, -sink_positions) if sinks else sink_keys
        window = self.geometry.window
        # Only a block that needs the whole band under a mask builds one: group × rows × span elements.
        span = (window + 1 if window is not None else local_positions.numel()) + sinks
        block = max(1, min(steps, _SCORE_ELEMENTS // max(1, (heads // kv_heads) * span)))
        outputs = []
        for start in range(0, steps, block):
            q = grouped[..., start : start + block, :]
            at = query_positions[start : start + block]
            parts = self.local_parts(q, at, local_positions, local_keys, local_values, scaling)
            if sinks:
                scores = self.sink_scores_separable(
                    q, sink_keys, sink_keys_at_zero, at, sink_positions
                ).float()
                scores = (scores * scaling).masked_fill(
                    ~(sink_positions[None, :] <= at[:, None]), float("-inf")
                )
                # A row with no sink yet (none of the first positions reached) holds no mass there.
                weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
                sink_out = torch.matmul(weights.to(value.dtype), sink_values).float()
                parts.append((sink_out, torch.logsumexp(scores, dim=-1)))
            outputs.append(merge_parts(parts).to(value.dtype))
        attended = torch.cat(outputs, dim=-2).reshape(batch, heads, steps, dim)
        return attended.transpose(1, 2).contiguous()

    def local_parts(
        self,
        q: torch.Tensor,
        at: torch.Tensor,
        local_positions: torch.Tensor,
        local_keys: torch.Tensor,
        local_values: torch.Tensor,
        scaling: float,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The query block's local band as (output, log-sum-exp) parts. In the usual case (the block's positions
        and the held local positions both consecutive, the block's own keys among them, a window no narrower
        than the block) the band is a parallelogram: a rectangle every query reads whole (no mask), the block's
        own keys (a causal triangle) and the oldest keys (the mirrored triangle: causal once queries and keys
        are both reversed). Otherwise the whole band is attended at once under its mask."""
        window = self.geometry.window
        low = 0 if window is None else int(torch.searchsorted(local_positions, at[:1] - window)[0])
        high = int(torch.searchsorted(local_positions, at[-1:], right=True)[0])
        if high <= low:
            return []
        held = local_positions[low:high]
        first, last, begin, end, rows = int(held[0]), int(held[-1]), int(at[0]), int(at[-1]), at.numel()
        regular = (
            end - begin == rows - 1 and last - first == high - low - 1 and last == end and first <= begin
        )
        if not regular or (window is not None and window < rows):
            return [
                flash_part(
                    q, local_keys[:, :, low:high], local_values[:, :, low:high], at, held, window, scaling
                )
            ]

        def keys(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:  # positions [start, stop)
            span = slice(low + start - first, low + stop - first)
            return local_keys[:, :, span], local_values[:, :, span]

        parts = [causal_part(q, *keys(begin, end + 1), scaling, reverse=False)]
        # Query i reads key j ≥ i − window: keys from begin − window + rows on are read by every query.
        oldest = first if window is None else max(first, begin - window + rows)
        if oldest < begin:
            parts.append(flash_part(q, *keys(oldest, begin), None, None, window, scaling))
        if window is not None and first == begin - window:
            parts.append(causal_part(q, *keys(first, oldest), scaling, reverse=True))
        elif window is not None and first < oldest:  # the oldest keys start inside the mirrored triangle
            held_oldest = torch.arange(first, oldest)
            parts.append(flash_part(q, *keys(first, oldest), at, held_oldest, window, scaling))
        return parts

    def sink_scores_separable(
        self,
        query: torch.Tensor,
        sink_keys: torch.Tensor,
        sink_keys_at_zero: torch.Tensor,
        at: torch.Tensor,
        sink_positions: torch.Tensor,
    ) -> torch.Tensor:
        """Query · sink key, capped where i − j > cap without a rotation per pair: each query turned by (cap − i)
        and each sink key by −j gives R(cap − i)·R(i)q̃ · R(−j)·R(j)k̃ = q̃ᵀ R(−cap) k̃, one matmul for all pairs."""
        plain = torch.matmul(query, sink_keys.transpose(-1, -2))
        cap = self.geometry.cap
        capped = (at[:, None] - sink_positions[None, :]) > cap
        if not bool(capped.any()):
            return plain
        far = torch.matmul(self.rotated(query, cap - at), sink_keys_at_zero.transpose(-1, -2))
        return torch.where(capped.to(query.device), far, plain)

    def rotated(self, states: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """``states`` (…, n, dim) each turned by its own RoPE angle ``shifts`` (n positions): a pure rotation, since
        post-RoPE states already carry the rotary module's attention scaling. Angles in float64: positions of
        tens of thousands times a frequency near 1 lose radians' worth of digits in float32."""
        inv_freq = self.rotary.inv_freq.to(device=states.device, dtype=torch.float64)
        rotary_dim = 2 * inv_freq.numel()
        angles = shifts.to(device=states.device, dtype=torch.float64)[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1)
        cos, sin = angles.cos().to(states.dtype), angles.sin().to(states.dtype)
        part = states[..., :rotary_dim]
        turned = part * cos + rotate_half(part) * sin
        if rotary_dim < states.shape[-1]:
            turned = torch.cat([turned, states[..., rotary_dim:]], dim=-1)
        return turned

    def attend_eager(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        """Λ attention, query block by query block: each block scores the sinks and only the keys in its window."""
        batch, heads, steps, dim = query.shape
        kv_heads = key.shape[1]
        grouped = query.reshape(batch, kv_heads, heads // kv_heads, steps, dim)
        window = self.geometry.window
        sinks = int((key_positions < self.geometry.sinks).sum())
        sink_keys, sink_values = key[:, :, None, :sinks], value[:, :, None, :sinks]
        sink_positions = key_positions[:sinks]
        local_positions = key_positions[sinks:]
        span = (window + 1 if window is not None else local_positions.numel()) + sinks
        block = max(1, min(steps, _SCORE_ELEMENTS // max(1, batch * heads * span)))
        outputs = []
        for start in range(0, steps, block):
            q = grouped[..., start : start + block, :]
            at = query_positions[start : start + block]
            low = 0 if window is None else int(torch.searchsorted(local_positions, at[:1] - window)[0])
            high = int(torch.searchsorted(local_positions, at[-1:], right=True)[0])
            reach = at[:, None] - local_positions[None, low:high]
            allowed = (reach >= 0) if window is None else (reach >= 0) & (reach <= window)
            allowed = torch.cat([sink_positions[None, :] <= at[:, None], allowed], dim=-1)
            local_keys = key[:, :, None, sinks + low : sinks + high]
            local_scores = torch.matmul(q, local_keys.transpose(-1, -2))
            sink_scores = self.sink_scores(q, sink_keys, at, sink_positions)
            scores = torch.cat([sink_scores, local_scores], dim=-1) * scaling
            scores = scores.masked_fill(~allowed.to(scores.device), float("-inf"))
            weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
            out = torch.matmul(weights[..., :sinks], sink_values)
            out = out + torch.matmul(weights[..., sinks:], value[:, :, None, sinks + low : sinks + high])
            outputs.append(out)
        attended = torch.cat(outputs, dim=-2).reshape(batch, heads, steps, dim)
        return attended.transpose(1, 2).contiguous()

    def sink_scores(
        self, query: torch.Tensor, sink_keys: torch.Tensor, at: torch.Tensor, sink_positions: torch.Tensor
    ) -> torch.Tensor:
        """Query · sink key, with the query re-rotated per sink by the angle of (j + cap − i) where i − j > cap,
        so the pair is scored at distance cap: R(j + cap − i)·R(i)q̃ · R(j)k̃ = q̃ᵀ R(−cap) k̃."""
        cap = self.geometry.cap
        distance = at[:, None] - sink_positions[None, :]
        capped = distance > cap
        if not bool(capped.any()):
            return torch.matmul(query, sink_keys.transpose(-1, -2))
        # The post-RoPE query already carries the rotary module's attention scaling: the re-rotation is a pure
        # rotation (cos/sin without that factor), or the scaling would be applied twice.
        inv_freq = self.rotary.inv_freq.to(device=query.device, dtype=torch.float32)
        rotary_dim = 2 * inv_freq.numel()
        shift = torch.where(capped, cap - distance, 0).to(device=query.device, dtype=torch.float32)
        angles = shift[..., None] * inv_freq  # (block, sinks, rotary_dim / 2)
        angles = torch.cat([angles, angles], dim=-1)
        cos, sin = angles.cos().to(query.dtype), angles.sin().to(query.dtype)
        rotated_part = query[..., None, :rotary_dim]  # (..., block, 1, rotary_dim) against (block, sinks, ·)
        rotated = rotated_part * cos + rotate_half(rotated_part) * sin
        if rotary_dim < query.shape[-1]:
            rest = query[..., None, rotary_dim:].expand(*rotated.shape[:-1], -1)
            rotated = torch.cat([rotated, rest], dim=-1)
        # (batch, kv_heads, group, block, sinks, dim) · (batch, kv_heads, 1, 1, sinks, dim)
        return (rotated * sink_keys[:, :, :, None]).sum(-1)

    # -- eviction ---------------------------------------------------------------------------------------

    def evict(self, layer: Any, key_positions: torch.Tensor) -> torch.Tensor:
        """Keep the sinks and the newest ``window`` entries of this layer; returns the positions kept."""
        window = self.geometry.window
        sinks = int((key_positions < self.geometry.sinks).sum())
        if window is None or key_positions.numel() - sinks <= window:
            return key_positions
        layer.keys = torch.cat([layer.keys[..., :sinks, :], layer.keys[..., -window:, :]], dim=-2)
        layer.values = torch.cat([layer.values[..., :sinks, :], layer.values[..., -window:, :]], dim=-2)
        return torch.cat([key_positions[:sinks], key_positions[-window:]])


def _lambda_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    *_: Any,  # kvpress's global attention patch passes dropout positionally
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention function transformers calls under ``_attn_implementation = "longscope_lambda"``; the
    causal mask is not built for it (unknown to the mask interface): the Λ mask comes from the tracked positions."""
    run = _ACTIVE.get()
    if run is None:
        raise RuntimeError("lambda attention is switched on outside LambdaShaped.attending")
    return run(module, query, key, value, **kwargs)


AttentionInterface.register(ATTENTION_NAME, _lambda_attention)

"""What LongHeads and InfLLM share: the context's KV cut into blocks after a few sink tokens, a summary of each
block captured during the prefill, and attention that loads, per step, only the sinks, the blocks a selection
rule picks and the local tokens, counting the bytes it read."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.models.llama.modeling_llama import rotate_half

from longscope.core import Backend, Sample, UsageError
from longscope.methods.base import ContextState, KVMethod, cache_bytes, growing_cache, layer_lengths
from longscope.methods.kv._attention_switch import attention_function

ATTENTION_NAME = "longscope_block_memory"
# How many trained windows a plan may ask these methods to read: every step reads a fixed span at any length,
# but the whole cache is held and the reach is untested beyond it, so longer lengths are refused.
READ_MULTIPLE = 4


@dataclass(frozen=True)
class Layout:
    """Where the blocks of one context lie: ``sinks`` tokens first, then ``count`` blocks of ``size``; the
    context's tail after the last whole block is always attended, as the tokens after the context are."""

    sinks: int
    size: int
    count: int

    def span(self, block: int) -> tuple[int, int]:
        start = self.sinks + block * self.size
        return start, start + self.size


@dataclass
class _Run:
    method: BlockMemory
    state: ContextState
    capturing: bool
    trained: int  # the model's trained window: past it, keys are read at re-assigned positions
    inv_freq: torch.Tensor | None  # the rotary frequencies the re-assignment rotates keys with
    loaded_bytes: float = 0.0  # KV bytes read by decode steps, summed over layers and steps
    steps: int = 0
    masked_last: dict[int, int] = field(
        default_factory=dict
    )  # per layer: context entries left out, last step
    widest: int = 0  # the largest query-key distance read at re-assigned positions


_ACTIVE: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("longscope_block_memory", default=None)


@dataclass(frozen=True)
class BlockMemory(KVMethod):
    """A method that keeps the whole context's KV and attends, at each step after the prefill, to the sinks,
    the local tokens and the blocks its rule selects. Subclasses give the rule: ``summarise`` (what the prefill
    keeps per block), and ``relevance`` (a score per selector head and block for the current queries: one row per query head when
    each head selects its own blocks, one row when the layer shares a selection).

    With neither a ratio nor a budget, ``top`` blocks are selected per step (the papers' setting). Ratio and
    budget count context entries attended per step instead: ``kept(n)`` entries are the sinks, the local
    tokens and as many whole blocks as fit, rounded up; ratio 0 selects every block, which is full attention.
    Past the trained window (a long context, or a conversation grown past it) a step reads no more blocks than
    keep every distance inside the window (``blocks_within``), the best-scoring first, whatever the ratio.
    """

    # Past the trained window the rows go block by block and each reads at re-assigned positions (``placed``),
    # so the distances stay within ``reach``; with ``top`` blocks that is a fixed span, whatever the length.
    extends_window: ClassVar[bool] = True
    sinks: int = 64
    block: int = 128
    local: int = 256
    top: int = 16  # blocks selected per step when neither a ratio nor a budget is given

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, least in (("sinks", 0), ("block", 1), ("local", 0), ("top", 0)):
            if getattr(self, name) < least:
                raise UsageError(
                    f"method {self.name}: {name} must be at least {least} (got {getattr(self, name)})"
                )

    # -- sizes -----------------------------------------------------------------------------------------

    def layout(self, context_tokens: int) -> Layout:
        return Layout(self.sinks, self.block, max(0, (context_tokens - self.sinks) // self.block))

    def blocks_kept(self, context_tokens: int) -> int:
        layout = self.layout(context_tokens)
        if self.ratio is None and self.budget is None:
            return min(layout.count, self.top)
        if self.kept(context_tokens) >= context_tokens:
            return layout.count
        spare = self.kept(context_tokens) - self.sinks - self.local
        return min(layout.count, max(0, math.ceil(spare / self.block)))

    def reach(self) -> int:
        """The largest query-key distance a step past the trained window reads with ``top`` blocks (rows go in
        blocks; the tail holds the local tokens, the rest of a block the local span cuts into, and the rows)."""
        raise NotImplementedError

    def placed(self, columns: torch.Tensor, tail_start: int, total: int) -> torch.Tensor:
        """The positions the gathered keys ``columns`` (sorted, per selector head) are read at past the trained
        window; the tail from ``tail_start`` keeps its own, so only the distances to the rest change."""
        raise NotImplementedError

    def blocks_within(self, trained: int, fixed: int) -> int | None:
        """The most blocks one step past the trained window may read, besides ``fixed`` columns (the sinks and
        the tail), so that no distance reaches ``trained``; None when the blocks' count moves no distance."""
        return None

    def extended_window(self, trained: int) -> int | None:
        # A ratio or a budget attends a share of the context that grows with it: no reach past the window then
        # (the trained window itself is claimed, so the plan skips longer samples rather than truncating them).
        if self.ratio is not None or self.budget is not None or self.reach() >= trained:
            return trained
        return READ_MULTIPLE * trained

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        tokens = len(backend.encode(sample.context))
        self.check_context(tokens, sample.id)
        if self.sinks + self.block + self.local > tokens:
            raise UsageError(
                f"method {self.label()}: {self.sinks} sinks + a block of {self.block} + {self.local} local tokens "
                f"do not fit the context of {sample.id} ({tokens} tokens), so no block could be selected; give "
                "a smaller block, sinks or local window, or a longer length"
            )

    # -- the rule (subclasses) ---------------------------------------------------------------------------

    def summarise(self, query: torch.Tensor, key: torch.Tensor, layout: Layout, scaling: float) -> Any:
        raise NotImplementedError

    def relevance(self, summary: Any, query: torch.Tensor, scaling: float) -> torch.Tensor:
        """(selector heads, blocks) scores of the blocks for the current queries (1, H, q, D)."""
        raise NotImplementedError

    # -- hooks -----------------------------------------------------------------------------------------

    new_cache = growing_cache

    @torch.no_grad()
    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        context = int(input_ids.shape[1])
        self.check_context(context, "this request")
        state = ContextState(cache=cache, context_tokens=context, extra={"summaries": {}})
        run = _Run(self, state, True, trained_window(model), rotary_frequencies(model))
        with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
            model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        state.layer_lengths = layer_lengths(cache)
        state.extra["widest"] = run.widest
        return state

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        run = _Run(self, state, False, trained_window(model), rotary_frequencies(model))
        try:
            with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
                yield
        finally:
            state.extra["widest"] = max(state.extra.get("widest", 0), run.widest)
            state.extra["masked_last"] = sum(run.masked_last.values())
            state.extra["loaded_per_step"] = run.loaded_bytes / run.steps if run.steps else None

    def masked_entries(self, state: ContextState) -> int:
        return int(state.extra.get("masked_last", 0))

    def held_bytes(self, state: ContextState) -> int:
        """Every KV entry stays (the blocks are only left out of attention) plus the block summaries."""
        summaries = state.extra.get("summaries", {}).values()
        extra = sum(t.numel() * t.element_size() for s in summaries for t in _tensors(s))
        return cache_bytes(state.cache) + extra

    def measurements(self, state: ContextState) -> dict[str, Any]:
        loaded = state.extra.get("loaded_per_step")
        return {} if loaded is None else {"kv_bytes_loaded": int(loaded)}

    # -- attention -------------------------------------------------------------------------------------

    def select(
        self,
        summary: Any,
        query: torch.Tensor,
        context: int,
        usable: int,
        scaling: float,
        limit: int | None = None,
    ) -> torch.Tensor:
        """(selector heads, kept) indices of the usable blocks (those wholly before the local tokens) kept, in
        order, at most ``limit``; the selector heads are the query heads, or one for the whole layer."""
        keep = min(self.blocks_kept(context), usable, usable if limit is None else limit)
        scores = self.relevance(summary, query, scaling)[:, :usable]
        if keep >= usable:
            return torch.arange(usable, device=query.device).expand(scores.shape[0], -1)
        return scores.topk(keep, dim=-1).indices.sort(-1).values


def trained_window(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(getattr(config, "max_position_embeddings", None) or 1 << 62)


def rotary_frequencies(model: Any) -> torch.Tensor | None:
    """The model's rotary ``inv_freq`` (None without one: such a model is never read past its window)."""
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    return getattr(rotary, "inv_freq", None)


def _tensors(summary: Any) -> list[torch.Tensor]:
    if isinstance(summary, torch.Tensor):
        return [summary]
    return [t for t in summary if isinstance(t, torch.Tensor)]


def _block_memory_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    *_: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    run = _ACTIVE.get()
    if run is None:
        raise RuntimeError("block memory attention is switched on outside its method")
    if query.shape[0] != 1:
        raise ValueError("block memory methods run one context at a time (batch size 1)")
    method, state = run.method, run.state
    layer = int(module.layer_idx)
    scaling = float(kwargs.get("scaling") or query.shape[-1] ** -0.5)
    steps, total = query.shape[2], key.shape[2]
    if run.capturing:
        state.extra["summaries"][layer] = method.summarise(
            query, key, method.layout(state.context_tokens), scaling
        )
        if total <= run.trained:
            output = F.scaled_dot_product_attention(
                query, key, value, is_causal=True, scale=scaling, enable_gqa=True
            )
            return output.transpose(1, 2).contiguous(), None
    elif total <= run.trained:
        return _attend_selected(run, layer, query, key, value, scaling, reposition=False), None
    # Past the trained window: the rows go in blocks, each reading only the sinks, its selected blocks and its
    # local tokens at re-assigned positions, so no query meets a distance the model was not trained on.
    first = total - steps
    outputs = [
        _attend_selected(
            run, layer, query[:, :, start : start + method.block], key[:, :, : first + start + method.block],
            value[:, :, : first + start + method.block], scaling, reposition=True,
        )
        for start in range(0, steps, method.block)
    ]  # fmt: skip
    return torch.cat(outputs, dim=1), None


def _attend_selected(
    run: _Run,
    layer: int,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scaling: float,
    reposition: bool,
) -> torch.Tensor:
    """Attention of the last ``query`` rows of the ``key`` span to the sinks, the blocks the rule selects and
    the local tokens; with ``reposition`` the gathered keys are rotated to the positions the method assigns."""
    method, state = run.method, run.state
    steps, total = query.shape[2], key.shape[2]
    context = state.context_tokens
    layout = method.layout(context)
    heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[-1]
    groups = heads // kv_heads
    local_start = max(0, total - steps - method.local)
    # Blocks wholly before the local tokens may be selected; a block the local span cuts into is attended whole.
    usable = min(layout.count, max(0, (local_start - layout.sinks) // layout.size))
    tail_start = min(total, layout.sinks + usable * layout.size)
    fixed = torch.cat([torch.arange(min(layout.sinks, total)), torch.arange(tail_start, total)]).to(
        query.device
    )
    # Past the window the blocks read are capped so the distances stay inside it, as both papers size the
    # attended span to the trained window: a ratio's share, or a conversation grown past the window, is cut
    # to its best-scoring blocks there.
    limit = method.blocks_within(run.trained, fixed.numel()) if reposition else None
    summary = state.extra["summaries"][layer]
    chosen = method.select(summary, query, context, usable, scaling, limit)  # (S, kept)
    offsets = torch.arange(layout.size, device=query.device)
    block_columns = (layout.sinks + chosen[..., None] * layout.size + offsets).flatten(1)
    columns = torch.cat([fixed.expand(chosen.shape[0], -1), block_columns], dim=-1).sort(-1).values  # (S, m)
    at = torch.arange(total - steps, total, device=query.device)
    allowed = columns[:, None, :] <= at[None, :, None]  # (S, q, m)
    shift = None
    if reposition:
        placed = method.placed(columns, tail_start, total)
        shift = placed - columns
        run.widest = max(run.widest, total - 1 - int(placed.min()))

    if chosen.shape[0] == heads:  # each query head its own blocks
        keys = key[0].repeat_interleave(groups, 0).gather(1, columns[..., None].expand(-1, -1, dim))
        values = value[0].repeat_interleave(groups, 0).gather(1, columns[..., None].expand(-1, -1, dim))
        if shift is not None:
            keys = rotated(keys, shift, run.inv_freq)
        output = F.scaled_dot_product_attention(query[0], keys, values, attn_mask=allowed, scale=scaling)[
            None
        ]
        # An entry is left out for a KV head when none of its query heads selected it.
        used = torch.zeros(kv_heads, total, dtype=torch.bool, device=query.device)
        used.scatter_(1, columns.reshape(kv_heads, -1), True)
        loaded = int(used.sum())
    else:  # one selection shared by the layer's heads
        keys, values = key[:, :, columns[0]], value[:, :, columns[0]]
        if shift is not None:
            keys = rotated(keys, shift[0], run.inv_freq)
        rows = query.reshape(1, kv_heads, groups * steps, dim)
        mask = allowed[0].repeat(groups, 1)
        output = F.scaled_dot_product_attention(rows, keys, values, attn_mask=mask, scale=scaling)
        output = output.reshape(1, heads, steps, dim)
        used = torch.zeros(kv_heads, total, dtype=torch.bool, device=query.device)
        used[:, columns[0]] = True
        loaded = int(used.sum())
    if not run.capturing:
        run.masked_last[layer] = int((~used[:, :context]).sum())
        if steps == 1:
            run.steps += 1 if layer == 0 else 0
            run.loaded_bytes += loaded * dim * (key.element_size() + value.element_size())
    return output.transpose(1, 2).contiguous()


def rotated(keys: torch.Tensor, shift: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Keys already rotated by RoPE at their positions, rotated further by ``shift`` positions (broadcast over
    the leading dimensions): R(p + s)k = R(s)R(p)k. A pure rotation, without the rotary module's scaling, which
    the keys already carry."""
    rotary_dim = 2 * inv_freq.numel()
    angles = shift[..., None].to(torch.float32) * inv_freq.to(device=keys.device, dtype=torch.float32)
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos().to(keys.dtype), angles.sin().to(keys.dtype)
    part = keys[..., :rotary_dim]
    turned = part * cos + rotate_half(part) * sin
    return turned if rotary_dim == keys.shape[-1] else torch.cat([turned, keys[..., rotary_dim:]], dim=-1)


AttentionInterface.register(ATTENTION_NAME, _block_memory_attention)

"""``longheads``: LongHeads, each attention head attends only to the few context chunks whose summary key
scores highest for its current query, besides the first chunk and the local tokens (training-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from longscope.methods.kv._block_memory import BlockMemory, Layout


@dataclass(frozen=True)
class LongHeads(BlockMemory):
    """LongHeads (Lu et al., 2024, "Multi-Head Attention is Secretly a Long Context Processor").

    The context is cut into chunks of ``block`` tokens (the paper's chunk size, 256). During the prefill each
    chunk gets one summary key per query head: its keys weighted by the softmax attention they receive from
    the chunk's mean query, r = Σ_j softmax_j(q̄·k_j/√d) k_j. At each later step each query head scores the
    chunks by q·r and attends only to the ``top`` best (14 by default: with the first and the last chunk, the
    paper's 16 chunks of 256 = a 4k attention window), plus the first chunk (``sinks``) and the ``local``
    tokens before the query. A question of several tokens selects with its mean query, as the paper's
    chunk-wise encoding does. Every KV entry stays in memory; the rest are left out of attention (masked).

    Past the trained window (the paper's point) the rows go chunk by chunk, the context's prefill too, each
    chunk reading the first chunk, its selected chunks and its local tokens placed side by side before the
    rows, as the paper compacts them into its window: the largest distance is then ``reach()`` (4k with the
    defaults), whatever the length. A ratio or budget (which attends a share growing with the context) and a
    conversation grown past the window are held to it the paper's way: a step reads at most as many chunks as
    fit the trained window beside the first chunk and the tail, the best-scoring first. Within the window keys
    keep their original positions and the context's prefill is dense: nothing there is past what the model was
    trained on.

    Departures: within the trained window the chunks are not compacted and the prefill is dense (the paper
    encodes chunk by chunk with the same selection at any length); tokens after the context (questions,
    answers, later turns) are never cut into chunks and stay in the local tail at their own distances.
    """

    name = "longheads"
    description = "LongHeads: per-head top chunks by summary key, plus the first chunk and the local tokens"
    sinks: int = 256
    block: int = 256
    local: int = 256
    top: int = 14

    def summarise(self, query: torch.Tensor, key: torch.Tensor, layout: Layout, scaling: float) -> Any:
        heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[-1]
        end = layout.sinks + layout.count * layout.size
        keys = key[0, :, layout.sinks : end].repeat_interleave(heads // kv_heads, 0)
        keys = keys.reshape(heads, layout.count, layout.size, dim).float()
        means = query[0, :, layout.sinks : end].reshape(heads, layout.count, layout.size, dim).float().mean(2)
        weights = (torch.einsum("hcd,hcsd->hcs", means, keys) * scaling).softmax(-1)
        return torch.einsum("hcs,hcsd->hcd", weights, keys)  # (H, chunks, D)

    def relevance(self, summary: Any, query: torch.Tensor, scaling: float) -> torch.Tensor:
        return torch.einsum("hd,hcd->hc", query[0].float().mean(1), summary)

    def reach(self) -> int:
        # first chunk + selected chunks + (local tokens, part of a chunk the local span cuts into, a chunk of rows)
        return self.sinks + self.top * self.block + self.local + 2 * self.block

    def blocks_within(self, trained: int, fixed: int) -> int | None:
        # Packed side by side, a step reading m columns meets distances up to m − 1: at most ``trained`` columns,
        # the paper's rule that a head's attended chunks fit the pre-trained length.
        return max(0, (trained - fixed) // self.block)

    def placed(self, columns: torch.Tensor, tail_start: int, total: int) -> torch.Tensor:
        # Side by side, ending where the tail ends: the tail keeps its positions, the chunks before close up.
        count = columns.shape[-1]
        return (total - count + torch.arange(count, device=columns.device)).expand_as(columns)

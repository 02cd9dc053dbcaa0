"""``infllm``: InfLLM's block memory: context blocks with a few representative keys each; every step loads the
blocks whose representatives score highest, besides the initial tokens and a local window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from longscope.core import UsageError
from longscope.methods.kv._block_memory import BlockMemory, Layout


@dataclass(frozen=True)
class InfLLM(BlockMemory):
    """InfLLM (Xiao et al., 2024, "Unveiling the Intrinsic Capacity of LLMs for Understanding Extremely Long
    Sequences with Training-Free Memory").

    The context after the ``sinks`` initial tokens is cut into memory blocks of ``block`` tokens (128, as the
    paper). A token's representative score is the attention logit it receives from the ``local`` tokens that
    follow it, Σ_{j=1..local} q_{m+j}·k_m (queries averaged over a KV head's query group); each block keeps
    its ``representatives`` best-scoring keys (4, as the paper). At each later step a block's relevance is
    Σ_heads Σ_r q̄·r, the current (mean) query against its representatives summed over the layer's heads, and
    the ``top`` best blocks (16) are loaded with the initial tokens and the local window; the layer's heads
    share the loaded blocks, the unit a memory offload moves. ``kv_bytes_loaded`` is what that load reads
    per decode step.

    Past the trained window (the paper's point) the rows go block by block, the context's prefill too, and the
    initial tokens and the loaded blocks are all read at one position, just before the local tail, as the paper
    gives every memory token one distance: the largest distance is then ``reach()``, whatever the length.

    Departures: the whole cache stays on the device (nothing is offloaded, so the loaded bytes are what an
    offloading store would move); within the trained window positions stay the original ones and the prefill
    is dense (the paper streams the context chunk by chunk through the same lookup at any length); tokens after
    the context (questions, answers, later turns) stay in the local tail at their own distances.
    """

    name = "infllm"
    description = "InfLLM: block memory with representative keys; top blocks + initial tokens + local window"
    sinks: int = 64
    block: int = 128
    local: int = 512
    top: int = 16
    representatives: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.representatives <= self.block:
            raise UsageError(
                f"method infllm: representatives must be between 1 and the block of {self.block} "
                f"(got {self.representatives})"
            )

    def summarise(self, query: torch.Tensor, key: torch.Tensor, layout: Layout, scaling: float) -> Any:
        heads, kv_heads, steps, dim = query.shape[1], key.shape[1], query.shape[2], query.shape[-1]
        grouped = query[0].float().reshape(kv_heads, heads // kv_heads, steps, dim).mean(1)  # (Hkv, n, D)
        keys = key[0].float()
        # after[m] = Σ of the queries m+1 … m+local (cut at the context's end), by differences of a running sum.
        running = torch.nn.functional.pad(grouped.cumsum(1), (0, 0, 1, 0))
        at = torch.arange(steps, device=query.device)
        after = running[:, (at + self.local).clamp(max=steps - 1) + 1] - running[:, at + 1]
        score = (after * keys).sum(-1)  # (Hkv, n)
        end = layout.sinks + layout.count * layout.size
        score = score[:, layout.sinks : end].reshape(kv_heads, layout.count, layout.size)
        best = score.topk(self.representatives, dim=-1).indices  # (Hkv, blocks, r)
        blocks = keys[:, layout.sinks : end].reshape(kv_heads, layout.count, layout.size, dim)
        return blocks.gather(2, best[..., None].expand(-1, -1, -1, dim))  # (Hkv, blocks, r, D)

    def relevance(self, summary: Any, query: torch.Tensor, scaling: float) -> torch.Tensor:
        heads, dim = query.shape[1], query.shape[-1]
        kv_heads = summary.shape[0]
        mean = query[0].float().mean(1).reshape(kv_heads, heads // kv_heads, dim).mean(1)  # (Hkv, D)
        return torch.einsum("hd,hbrd->b", mean, summary)[None]  # one row: the layer's heads share it

    def reach(self) -> int:
        # memory one step before the tail: local tokens + part of a block the local span cuts into + rows
        return self.local + 2 * self.block

    def placed(self, columns: torch.Tensor, tail_start: int, total: int) -> torch.Tensor:
        return torch.where(columns < tail_start, tail_start - 1, columns)

"""``a-shape``: a sparse prefill where each query attends only to the attention sinks and a local window
(the Λ/A-shaped pattern of StreamingLLM as a prefill, after MInference and SCBench); the cache keeps everything."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longscope.core import UsageError
from longscope.methods.kv._sparse_prefill import SparsePrefill, Tally, attend_gathered


@dataclass(frozen=True)
class AShape(SparsePrefill):
    """A-shaped sparse prefill. A query at position i attends the keys j ≤ i with j < ``sinks`` or
    i − j ≤ ``window``; nothing else is computed. The query axis is walked in blocks of ``block`` tokens and
    each block gathers only the sinks and the slice of keys its window spans, so the work per block is
    ``block × (sinks + window + block)`` instead of ``block × i``. Every KV entry is stored and decoding attends
    to all of them, as in SCBench's A-shape (their prefill-only sparsity). A window at least as long as the
    input keeps every pair: the result is full attention.
    """

    name = "a-shape"
    description = (
        "sparse prefill: attention sinks + a local window per query block; the cache keeps everything"
    )
    sinks: int = 64
    window: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sinks < 0:
            raise UsageError(f"method {self.name}: sinks must be 0 or more (got {self.sinks})")
        if self.window < 1:
            raise UsageError(f"method {self.name}: window must be at least 1 token (got {self.window})")

    def example(self) -> str:
        return f"{self.name}(sinks=64,window=1024)"

    def sparse(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float, tally: Tally
    ) -> torch.Tensor:
        batch, heads, steps, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[2]
        groups = heads // kv_heads
        grouped = query.reshape(batch, kv_heads, groups, steps, dim)
        offset = total - steps
        outputs = []
        for start in range(0, steps, self.block):
            end = min(steps, start + self.block)
            first, last = offset + start, offset + end  # absolute positions of the block: [first, last)
            low = max(0, first - self.window)
            sinks = min(self.sinks, low)  # sinks already inside the local slice are not gathered twice
            columns = torch.cat([torch.arange(sinks), torch.arange(low, last)]).to(query.device)
            keys = torch.cat([key[:, :, :sinks], key[:, :, low:last]], dim=-2)
            values = torch.cat([value[:, :, :sinks], value[:, :, low:last]], dim=-2)
            at = torch.arange(first, last, device=query.device)[:, None]
            reach = at - columns[None, :]
            allowed = (reach >= 0) & ((columns[None, :] < self.sinks) | (reach <= self.window))
            # A KV head's query group is folded into the block's rows: keys are used as cached, never repeated.
            rows = grouped[..., start:end, :].reshape(batch, kv_heads, groups * (end - start), dim)
            out = attend_gathered(rows, keys, values, allowed.repeat(groups, 1), scaling)
            outputs.append(out.reshape(batch, kv_heads, groups, end - start, dim))
            tally.computed += heads * (end - start) * columns.numel()
        return torch.cat(outputs, dim=-2).reshape(batch, heads, steps, dim)

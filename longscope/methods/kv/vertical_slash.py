"""``vertical-slash``: MInference's vertical-slash sparse prefill: per head, the columns and diagonals the last
queries attend to most are estimated, then only those are computed; the cache keeps every entry."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longscope.core import UsageError
from longscope.methods.kv._sparse_prefill import SparsePrefill, Tally, attend_gathered

# MInference always keeps the first columns (attention sinks) and the nearest diagonals (the local window),
# whatever the estimate says: 30 and 100 in its vertical-slash search.
FORCED_COLUMNS = 30
FORCED_DIAGONALS = 100


@dataclass(frozen=True)
class VerticalSlash(SparsePrefill):
    """Vertical-slash sparse prefill after MInference (Jiang et al., 2024).

    For each query head, the last ``last_queries`` queries of the forward are scored against every key (causal
    softmax); a column's score is the attention it receives summed over them, a diagonal's (offset i − j) the
    attention summed along it. The head keeps the ``vertical`` best columns and the ``slash`` best diagonals,
    the first 30 columns and the nearest 100 diagonals always among them (MInference's forced entries; the
    nearest first when a count is smaller, so every query keeps its own key). Query
    i then attends to key j ≤ i when j is a kept column or i − j a kept diagonal. The query axis is walked in
    blocks of ``block``: each block gathers only the keys its head's columns and diagonals reach, so work
    scales with what the pattern keeps. Defaults are MInference's (1000 columns, 6096 diagonals, 64 last
    queries), tuned there for 128k inputs; at a few thousand tokens they keep most of the triangle.
    Departures: one fixed pattern type for every head (MInference searches a type per head offline), and
    blocks of query tokens are gathered key-wise (its GPU kernel tiles diagonals in 64 × 64 blocks).
    """

    name = "vertical-slash"
    description = "sparse prefill: per-head top columns and diagonals from the last queries (MInference)"
    vertical: int = 1000
    slash: int = 6096
    last_queries: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        for field_name in ("vertical", "slash", "last_queries"):
            if getattr(self, field_name) < 1:
                raise UsageError(
                    f"method {self.name}: {field_name} must be at least 1 (got {getattr(self, field_name)})"
                )

    def example(self) -> str:
        return f"{self.name}(vertical=1000,slash=6096)"

    def estimate(
        self, query: torch.Tensor, keys: torch.Tensor, scaling: float, tally: Tally
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per head, which key columns and which diagonals (offsets i − j) are kept: two (H, total) masks.
        ``query`` (H, steps, D) are this forward's queries, ``keys`` (H, total, D) every key per query head."""
        heads, steps, _ = query.shape
        total = keys.shape[1]
        last = min(self.last_queries, steps)
        at = torch.arange(total - last, total, device=query.device)
        columns = torch.arange(total, device=query.device)
        scores = torch.matmul(query[:, -last:], keys.transpose(-1, -2)).float() * scaling
        scores = scores.masked_fill(columns[None, None, :] > at[None, :, None], float("-inf"))
        weights = scores.softmax(-1)
        tally.computed += heads * last * total
        vertical = weights.sum(1)
        offsets = (at[:, None] - columns[None, :]).clamp(min=0).expand(heads, -1, -1)
        slash = torch.zeros(heads, total, device=query.device).scatter_add_(
            -1, offsets.reshape(heads, -1), weights.reshape(heads, -1)
        )
        # Forced entries outrank every estimate (a weight sum is at most ``last``), the first column and the
        # nearest diagonal first, so a small count still keeps each query's own key.
        count = max(FORCED_COLUMNS, FORCED_DIAGONALS)
        forced = last + 1.0 + torch.arange(count, 0, -1, device=query.device, dtype=vertical.dtype)
        vertical[:, :FORCED_COLUMNS] = forced[: min(FORCED_COLUMNS, total)]
        slash[:, :FORCED_DIAGONALS] = forced[: min(FORCED_DIAGONALS, total)]
        keep_columns = torch.zeros(heads, total, dtype=torch.bool, device=query.device)
        keep_diagonals = torch.zeros_like(keep_columns)
        keep_columns.scatter_(-1, vertical.topk(min(self.vertical, total), -1).indices, True)
        keep_diagonals.scatter_(-1, slash.topk(min(self.slash, total), -1).indices, True)
        return keep_columns, keep_diagonals

    def sparse(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float, tally: Tally
    ) -> torch.Tensor:
        _, heads, steps, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[2]
        groups = heads // kv_heads
        keys = key[0].repeat_interleave(groups, 0)  # (H, total, D): one row of keys per query head
        values = value[0].repeat_interleave(groups, 0)
        queries = query[0]
        keep_columns, keep_diagonals = self.estimate(queries, keys, scaling, tally)
        # below[h, x]: kept diagonals of head h with offset < x, so a block's diagonals reaching key j are counted
        # in one subtraction.
        below = torch.nn.functional.pad(keep_diagonals.long().cumsum(-1), (1, 0))
        offset = total - steps
        outputs = []
        for start in range(0, steps, self.block):
            end = min(steps, start + self.block)
            first, last = offset + start, offset + end
            j = torch.arange(last, device=query.device)
            # Key j is reached by a diagonal d of this block when first − j ≤ d ≤ last − 1 − j.
            reached = (below[:, last - j] - below[:, (first - j).clamp(min=0)]) > 0
            reached |= keep_columns[:, :last]
            width = int(reached.sum(-1).max())
            order = torch.argsort((~reached).to(torch.int8), dim=-1, stable=True)[:, :width]  # kept first
            real = reached.gather(-1, order)
            rows = torch.arange(first, last, device=query.device)
            reach = rows[None, :, None] - order[:, None, :]  # (H, block, width): i − j
            allowed = (reach >= 0) & real[:, None, :]
            allowed &= keep_columns.gather(-1, order)[:, None, :] | keep_diagonals.gather(
                -1, reach.clamp(min=0).reshape(heads, -1)
            ).reshape(reach.shape)
            gathered_keys = keys.gather(1, order[..., None].expand(-1, -1, dim))
            gathered_values = values.gather(1, order[..., None].expand(-1, -1, dim))
            outputs.append(
                attend_gathered(
                    queries[None, :, start:end],
                    gathered_keys[None],
                    gathered_values[None],
                    allowed[None],
                    scaling,
                )[0]
            )
            tally.computed += heads * (end - start) * width
        return torch.cat(outputs, dim=-2)[None]

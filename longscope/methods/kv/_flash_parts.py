"""Exact attention in parts on a CPU: flash-attention calls that return each part's log-sum-exp, and their merge."""

from __future__ import annotations

import torch

# CPU's flash attention returns the log-sum-exp beside the output, so disjoint sets of keys (a band, sinks, keys
# scored at other positions) can be attended apart and merged exactly; absent on other builds.
FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
FUSED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def flash_part(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    at: torch.Tensor | None,
    key_at: torch.Tensor | None,
    window: int | None,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One CPU flash attention call for a block of grouped queries (batch, kv_heads, group, rows, dim) against
    keys shared by the group; masked, when query positions ``at`` and key positions ``key_at`` are given, to
    the pairs with 0 ≤ at − key_at (≤ ``window`` when one is given); else every pair is read. Returns float32
    (output, log-sum-exp); a row with no key has −inf."""
    batch, kv_heads, group, rows, dim = q.shape
    mask = None
    if at is not None and key_at is not None:
        reach = at[:, None] - key_at[None, :]
        allowed = (reach >= 0) if window is None else (reach >= 0) & (reach <= window)
        mask = (
            torch.zeros(allowed.shape, dtype=q.dtype).masked_fill_(~allowed, float("-inf")).repeat(group, 1)
        )
    out, lse = FLASH_CPU(
        q.reshape(batch, kv_heads, group * rows, dim), keys, values, 0.0, False, attn_mask=mask, scale=scaling
    )
    lse = lse.reshape(q.shape[:-1]).float()
    if mask is not None:
        # The kernel reports 0 for a row with no key at all (a sink's own query); it holds no mass.
        lse = lse.masked_fill(~allowed.any(-1), float("-inf"))
    return out.reshape(q.shape).float(), lse


def causal_part(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scaling: float, *, reverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A square causal block through CPU flash attention's own causal mask, without building one: query r reads
    keys 0 … r, or with ``reverse`` keys r … rows − 1 (both orders flipped, so the kernel's causal mask fits).
    The group's queries cannot share one causal call, so its few keys are repeated per query head."""
    batch, kv_heads, group, rows, dim = q.shape
    queries = q.reshape(batch, kv_heads * group, rows, dim)
    keys, values = keys.repeat_interleave(group, dim=1), values.repeat_interleave(group, dim=1)
    if reverse:
        queries, keys, values = queries.flip(-2), keys.flip(-2), values.flip(-2)
    out, lse = FLASH_CPU(queries, keys, values, 0.0, True, scale=scaling)
    if reverse:
        out, lse = out.flip(-2), lse.flip(-1)
    return out.reshape(q.shape).float(), lse.reshape(q.shape[:-1]).float()


def merge_parts(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Softmax attention over the union of disjoint key sets, from each set's output and log-sum-exp."""
    top = torch.stack([lse for _, lse in parts]).amax(0)
    total = torch.zeros_like(top)
    merged = torch.zeros_like(parts[0][0])
    for out, lse in parts:
        share = torch.exp(lse - top)
        total = total + share
        merged = merged + out * share[..., None]
    return merged / total[..., None]

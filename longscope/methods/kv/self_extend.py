"""``self-extend``: SelfExtend (Jin et al., 2024): exact positions for the nearest keys, floor-divided (grouped)
positions for distant ones, so no query meets a relative distance above the trained window."""

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
from longscope.methods.base import ContextState
from longscope.methods.kv._attention_switch import attention_function
from longscope.methods.kv._flash_parts import FLASH_CPU, FUSED_DTYPES, flash_part, merge_parts
from longscope.methods.kv._rope_scaling import PositionMethod, find_rotary, trained_positions

ATTENTION_NAME = "longscope_self_extend"
# Scores materialised at once per query block (fp32 elements, two maps): bounds memory at any input length.
_SCORE_ELEMENTS = 1 << 25
# On a CPU the two maps are attended apart through flash attention and merged by their log-sum-exp: the eager
# maps scored every pair twice and took 5x+ longer at 16k. Tests switch this off to compare the two.
FUSED_ON_CPU = True


@dataclass(frozen=True)
class SelfExtend(PositionMethod):
    """SelfExtend as the paper's merged form: one softmax over two score maps. A key within ``window`` tokens of
    the query is scored at its true relative position; a farther key at position j is scored as if at j // G
    against the query at i // G + W − W // G (G = ``factor``, the group size; W = ``window``), which continues
    the neighbour distances without a jump. The largest distance then met is below the trained window L as long
    as the input is at most (L − W)·G + W, the window this method claims. The cache keeps the usual rotated keys;
    grouped keys are re-rotated from them at each step (a pure rotation by j // G − j), so nothing is reloaded.
    """

    name = "self-extend"
    description = (
        "SelfExtend: exact neighbour positions, grouped (floor-divided) positions beyond (no training)"
    )
    factor: float = 4.0
    window: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if float(self.factor) != int(self.factor):
            raise UsageError(
                f"method self-extend: factor is the group size and must be a whole number (got {self.factor:g})"
            )
        if self.window < 1:
            raise UsageError(f"method self-extend: window must be at least 1 token (got {self.window})")

    @property
    def group(self) -> int:
        return int(self.factor)

    def extended_window(self, trained: int) -> int | None:
        return (trained - self.window) * self.group + self.window

    def check_backend(self, backend: Backend) -> None:
        super().check_backend(backend)
        if backend.capabilities.in_process_model:
            self._check_window(trained_positions(backend.model, self.label()))

    def _check_window(self, trained: int) -> None:
        if self.window >= trained:
            raise UsageError(
                f"method {self.label()}: the neighbour window {self.window} must be below the model's trained "
                f"window of {trained} tokens"
            )

    # -- the KV hooks -----------------------------------------------------------------------------------

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        with self._switched(model):
            return super().prefill(model, input_ids, cache)

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        with self._switched(model):
            yield

    @contextlib.contextmanager
    def _switched(self, model: Any) -> Iterator[None]:
        """The model's attention goes through the grouped function for the duration, and back, even on error."""
        self._check_window(trained_positions(model, self.label()))
        run = _Grouping(find_rotary(model, self.label()).inv_freq, self.group, self.window)
        with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
            yield


@dataclass(frozen=True)
class _Grouping:
    inv_freq: torch.Tensor
    group: int
    window: int

    def rotate(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """``x`` (…, n, dim), already rotated at its position, turned further by ``shift`` (n,) positions.
        A pure rotation: the rotary module's attention scaling, already in ``x``, is not applied again."""
        inv_freq = self.inv_freq.to(device=x.device, dtype=torch.float32)
        rotary_dim = 2 * inv_freq.numel()
        angles = shift.to(device=x.device, dtype=torch.float32)[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1)
        part = x[..., :rotary_dim].float()
        turned = (part * angles.cos() + rotate_half(part) * angles.sin()).to(x.dtype)
        return torch.cat([turned, x[..., rotary_dim:]], dim=-1) if rotary_dim < x.shape[-1] else turned

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float):
        fused = FUSED_ON_CPU and FLASH_CPU is not None and query.device.type == "cpu"
        if fused and query.dtype in FUSED_DTYPES and value.shape[-1] == query.shape[-1]:
            return self.attend_fused(query, key, value, scaling)
        return self.attend_eager(query, key, value, scaling)

    def attend_fused(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float):
        """The merged form as two disjoint key sets per query block: the neighbours (distance < W) at true
        positions, the rest at grouped ones, each through CPU flash attention and merged by log-sum-exp. Far
        keys read by every query of the block go unmasked; only the edges of the two bands carry a mask."""
        batch, heads, steps, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[-2]
        window = self.window
        key_positions = torch.arange(total)
        query_positions = key_positions[total - steps :]
        grouped_keys = self.rotate(key, key_positions // self.group - key_positions)
        query_shift = query_positions // self.group + window - window // self.group - query_positions
        shape = (batch, kv_heads, heads // kv_heads, steps, dim)
        near, far = query.reshape(shape), self.rotate(query, query_shift).reshape(shape)
        # A block no taller than the window keeps each masked edge to about block x (block + window) pairs.
        block = max(1, min(steps, window, _SCORE_ELEMENTS // max(1, batch * heads * 2 * window)))
        outputs = []
        for start in range(0, steps, block):
            at = query_positions[start : start + block]
            first, last = int(at[0]), int(at[-1])
            rows = slice(start, start + block)
            low = max(0, first - window + 1)  # the oldest neighbour any query of the block reads
            parts = [
                flash_part(
                    near[..., rows, :], key[:, :, low : last + 1], value[:, :, low : last + 1],
                    at, key_positions[low : last + 1], window - 1, scaling,
                )
            ]  # fmt: skip
            edge = max(0, first - window)  # far keys before it are read by every query of the block
            if edge > 0:
                everyone = grouped_keys[:, :, :edge], value[:, :, :edge]
                parts.append(flash_part(far[..., rows, :], *everyone, None, None, None, scaling))
            if last - window >= edge:  # key j is far for query i when j <= i - W
                span = slice(edge, last - window + 1)
                parts.append(
                    flash_part(
                        far[..., rows, :], grouped_keys[:, :, span], value[:, :, span],
                        at - window, key_positions[span], None, scaling,
                    )
                )  # fmt: skip
            outputs.append(merge_parts(parts).to(value.dtype))
        attended = torch.cat(outputs, dim=-2).reshape(batch, heads, steps, value.shape[-1])
        return attended.transpose(1, 2).contiguous()

    def attend_eager(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float):
        """The merged form as the paper writes it: both score maps in full per query block, one softmax."""
        batch, heads, steps, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[-2]
        # The cache holds every entry from position 0 in order, so key j sits at position j.
        key_positions = torch.arange(total)
        query_positions = key_positions[total - steps :]
        grouped_keys = self.rotate(key, key_positions // self.group - key_positions)
        query_shift = (
            query_positions // self.group + self.window - self.window // self.group - query_positions
        )
        grouped_queries = self.rotate(query, query_shift)
        near, far = (
            q.reshape(batch, kv_heads, heads // kv_heads, steps, dim) for q in (query, grouped_queries)
        )
        keys, far_keys, values = key[:, :, None], grouped_keys[:, :, None], value[:, :, None]
        block = max(1, min(steps, _SCORE_ELEMENTS // max(1, batch * heads * total)))
        outputs = []
        for start in range(0, steps, block):
            at = query_positions[start : start + block]
            distance = (at[:, None] - key_positions[None, :]).to(query.device)
            scores = torch.where(
                distance < self.window,
                torch.matmul(near[..., start : start + block, :], keys.transpose(-1, -2)),
                torch.matmul(far[..., start : start + block, :], far_keys.transpose(-1, -2)),
            )
            scores = (scores.float() * scaling).masked_fill(distance < 0, float("-inf"))
            weights = torch.softmax(scores, dim=-1).to(value.dtype)
            outputs.append(torch.matmul(weights, values))
        attended = torch.cat(outputs, dim=-2).reshape(batch, heads, steps, value.shape[-1])
        return attended.transpose(1, 2).contiguous()


_ACTIVE: contextvars.ContextVar[_Grouping | None] = contextvars.ContextVar(
    "longscope_self_extend", default=None
)


def _self_extend_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    *_: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """What transformers calls under ``_attn_implementation = "longscope_self_extend"``: the causal mask is
    built here from positions (the mask interface does not know this name)."""
    run = _ACTIVE.get()
    if run is None:
        raise RuntimeError("self-extend attention is switched on outside SelfExtend.attending")
    scaling = kwargs.get("scaling") or query.shape[-1] ** -0.5
    return run(query, key, value, scaling), None


AttentionInterface.register(ATTENTION_NAME, _self_extend_attention)

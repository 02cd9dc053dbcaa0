"""A KIVI-style quantised KV-cache layer: keys per channel, values per token, a full-precision residual."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


@dataclasses.dataclass
class Quantised:
    """One quantised tensor: uint8 codes (4-bit ones packed two to a byte along head_dim) and, per group, the
    scale and the zero point (the group's minimum: a value is ``code × scale + zero``)."""

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.codes, self.scale, self.zero

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Quantised:
        return Quantised(fn(self.codes), fn(self.scale), fn(self.zero))


def value_group(head_dim: int, group_size: int) -> int:
    """Channels per value group: ``group_size``, or the largest divisor of head_dim below it (the whole head
    when the head is narrower), so that every token's channels split into equal groups."""
    return max(d for d in range(1, min(group_size, head_dim) + 1) if head_dim % d == 0)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Store 4-bit codes two to a byte (even channel in the low nibble, odd in the high one)."""
    if bits == 8:
        return codes
    if codes.shape[-1] % 2:
        raise ValueError(f"4-bit packing needs an even head_dim, got {codes.shape[-1]}")
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    if bits == 8:
        return codes
    return torch.stack((codes & 0x0F, codes >> 4), dim=-1).flatten(-2)


def _statistics(
    low: torch.Tensor, high: torch.Tensor, bits: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point of asymmetric quantisation from each group's minimum and maximum, in ``dtype``.
    Rounding to ``dtype`` moves the zero point down and the scale up where needed, so that the stored grid
    still spans the whole group and no element is clipped (a bf16 minimum may round above the true one)."""
    zero = low.to(dtype)
    zero = torch.where(zero.float() > low, torch.nextafter(zero, torch.full_like(zero, -math.inf)), zero)
    levels = 2**bits - 1
    scale = ((high - zero.float()) / levels).to(dtype)
    short = scale.float() * levels + zero.float() < high
    scale = torch.where(short, torch.nextafter(scale, torch.full_like(scale, math.inf)), scale)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant group: every code is 0
    return scale, zero


def _codes(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes computed from the statistics as stored (already rounded to their dtype), so that rounding the
    statistics adds no error of its own."""
    return torch.clamp(torch.round((x - zero.float()) / scale.float()), 0, 2**bits - 1).to(torch.uint8)


def _per_token_groups(stat: torch.Tensor, tokens: int, group_size: int) -> torch.Tensor:
    """Stretch per-group key statistics ``[..., groups, D]`` back to ``[..., tokens, D]``."""
    return stat.repeat_interleave(group_size, dim=-2)[..., :tokens, :]


def quantise_keys(keys: torch.Tensor, bits: int, group_size: int, dtype: torch.dtype) -> Quantised:
    """Keys per channel: each channel's minimum and maximum over a group of ``group_size`` consecutive tokens
    (the last group may be shorter), so an outlier channel keeps its own scale and spoils no other channel."""
    x = keys.float()
    tokens = x.shape[-2]
    whole = tokens // group_size * group_size
    lows, highs = [], []
    if whole:
        low, high = torch.aminmax(x[..., :whole, :].unflatten(-2, (whole // group_size, group_size)), dim=-2)
        lows.append(low)
        highs.append(high)
    if whole < tokens:
        low, high = torch.aminmax(x[..., whole:, :], dim=-2, keepdim=True)
        lows.append(low)
        highs.append(high)
    scale, zero = _statistics(torch.cat(lows, dim=-2), torch.cat(highs, dim=-2), bits, dtype)
    codes = _codes(
        x, _per_token_groups(scale, tokens, group_size), _per_token_groups(zero, tokens, group_size), bits
    )
    return Quantised(pack(codes, bits), scale, zero)


def dequantise_keys(q: Quantised, bits: int, group_size: int, dtype: torch.dtype) -> torch.Tensor:
    codes = unpack(q.codes, bits)
    tokens = codes.shape[-2]
    scale = _per_token_groups(q.scale, tokens, group_size).float()
    zero = _per_token_groups(q.zero, tokens, group_size).float()
    return (codes.float() * scale + zero).to(dtype)


def quantise_values(values: torch.Tensor, bits: int, group_size: int, dtype: torch.dtype) -> Quantised:
    """Values per token: each token's minimum and maximum over groups of channels (see ``value_group``)."""
    x = values.float()
    channels = value_group(x.shape[-1], group_size)
    grouped = x.unflatten(-1, (x.shape[-1] // channels, channels))
    scale, zero = _statistics(*torch.aminmax(grouped, dim=-1, keepdim=True), bits, dtype)
    codes = _codes(grouped, scale, zero, bits).flatten(-2)
    return Quantised(pack(codes, bits), scale.squeeze(-1), zero.squeeze(-1))


def dequantise_values(q: Quantised, bits: int, dtype: torch.dtype) -> torch.Tensor:
    codes = unpack(q.codes, bits).float()
    groups = q.scale.shape[-1]
    grouped = codes.unflatten(-1, (groups, codes.shape[-1] // groups))
    return (grouped * q.scale.float().unsqueeze(-1) + q.zero.float().unsqueeze(-1)).flatten(-2).to(dtype)


def _cat(a: Quantised | None, b: Quantised) -> Quantised:
    if a is None:
        return b
    return Quantised(*(torch.cat((x, y), dim=-2) for x, y in zip(a.tensors(), b.tensors(), strict=True)))


class QuantizedKVLayer(DynamicLayer):
    """One layer's cache as KIVI holds it: the oldest tokens as uint8 codes (int4: two per byte) with a scale
    and zero point per group in the model dtype, the newest ones (``keys``/``values``, the residual) in full
    precision. ``update`` returns full keys and values: the quantised part dequantised, then the residual.

    On its own the layer streams as KIVI does: whenever the residual reaches ``residual_length + group_size``
    tokens its oldest whole group is quantised, so at least ``residual_length`` recent tokens stay exact.
    ``plan(n)`` instead makes the next update quantise exactly the oldest ``n`` tokens (the last key group may
    be shorter than ``group_size``) and then *holds*: every token appended later stays in full precision, so
    cropping it away (a question and its answer) leaves the quantised part untouched. A layer whose last key
    group is short (after a plan or a crop into the quantised part) never quantises again either, because new
    groups must start on a group boundary.

    Every tensor is stored as its own compact copy (slices are cloned), so ``held_bytes`` — the sum of
    ``numel × element_size`` over ``stored_tensors`` — is the memory really held.
    """

    def __init__(self, bits: int = 8, group_size: int = 32, residual_length: int = 128) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"bits must be 4 or 8, got {bits}")
        if group_size < 1 or residual_length < 0:
            raise ValueError("group_size must be at least 1 and residual_length at least 0")
        self.bits = bits
        self.group_size = group_size
        self.residual_length = residual_length
        # Plain tensor attributes (key_codes, key_scale, ..., None while nothing is quantised), so that code
        # looking at a layer's tensors the generic way (``vars(layer)``) sees all of them.
        self.quantised_keys = None
        self.quantised_values = None
        self.quantised_length = 0
        self.holding = False  # appended tokens stay in full precision
        self._planned: int | None = None

    # -- what is stored ----------------------------------------------------------------------------------

    def _part(self, kind: str) -> Quantised | None:
        codes = getattr(self, f"{kind}_codes")
        if codes is None:
            return None
        return Quantised(codes, getattr(self, f"{kind}_scale"), getattr(self, f"{kind}_zero"))

    def _set_part(self, kind: str, q: Quantised | None) -> None:
        for field, tensor in zip(("codes", "scale", "zero"), q.tensors() if q else (None,) * 3, strict=True):
            setattr(self, f"{kind}_{field}", tensor)

    @property
    def quantised_keys(self) -> Quantised | None:
        return self._part("key")

    @quantised_keys.setter
    def quantised_keys(self, q: Quantised | None) -> None:
        self._set_part("key", q)

    @property
    def quantised_values(self) -> Quantised | None:
        return self._part("value")

    @quantised_values.setter
    def quantised_values(self, q: Quantised | None) -> None:
        self._set_part("value", q)

    def stored_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the layer holds, by name."""
        stored: dict[str, torch.Tensor] = {}
        for kind, q in (("key", self.quantised_keys), ("value", self.quantised_values)):
            if q is not None:
                stored.update({f"{kind}_codes": q.codes, f"{kind}_scale": q.scale, f"{kind}_zero": q.zero})
        if self.is_initialized:
            stored.update({"residual_keys": self.keys, "residual_values": self.values})
        return stored

    def held_bytes(self) -> int:
        return int(sum(t.numel() * t.element_size() for t in self.stored_tensors().values()))

    @property
    def residual_tokens(self) -> int:
        return int(self.keys.shape[-2]) if self.is_initialized else 0

    def get_seq_length(self) -> int:
        return self.quantised_length + self.residual_tokens

    # -- quantising --------------------------------------------------------------------------------------

    def plan(self, quantised_tokens: int) -> None:
        """Have the next update leave exactly ``quantised_tokens`` of the oldest tokens quantised, then hold."""
        self._planned = quantised_tokens

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        if self.bits == 4 and key_states.shape[-1] % 2:
            raise ValueError(
                f"int4 packs two codes a byte and needs an even head_dim, got {key_states.shape[-1]}"
            )
        self.dtype, self.device = key_states.dtype, key_states.device
        self.keys = key_states.new_empty((*key_states.shape[:-2], 0, key_states.shape[-1]))
        self.values = value_states.new_empty((*value_states.shape[:-2], 0, value_states.shape[-1]))
        self.is_initialized = True

    def dequantised(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The quantised part back in the model dtype, or None when nothing is quantised."""
        if self.quantised_keys is None or self.quantised_values is None:
            return None
        keys = dequantise_keys(self.quantised_keys, self.bits, self.group_size, self.dtype)
        values = dequantise_values(self.quantised_values, self.bits, self.dtype)
        return keys, values

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, cache_kwargs: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        old = self.dequantised()
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        # The tokens of this step attend in full precision (as KIVI's prefill does); they are read back
        # dequantised from the next step on.
        keys, values = self.keys, self.values
        if old is not None:
            keys, values = torch.cat([old[0], keys], dim=-2), torch.cat([old[1], values], dim=-2)
        self._settle()
        return keys, values

    def _settle(self) -> None:
        if self._planned is not None:
            planned, self._planned = self._planned, None
            self.holding = True
            self._quantise_oldest(max(0, min(planned, self.get_seq_length()) - self.quantised_length))
            self.residual_length = self.residual_tokens
        elif not self.holding and self.quantised_length % self.group_size == 0:
            excess = self.residual_tokens - self.residual_length
            self._quantise_oldest(max(0, excess) // self.group_size * self.group_size)

    def _quantise_oldest(self, count: int) -> None:
        if count <= 0:
            return
        if self.quantised_length % self.group_size:
            raise RuntimeError("cannot quantise after a short key group: new groups must start on a boundary")
        keys = quantise_keys(self.keys[..., :count, :], self.bits, self.group_size, self.dtype)
        values = quantise_values(self.values[..., :count, :], self.bits, self.group_size, self.dtype)
        self.quantised_keys = _cat(self.quantised_keys, keys)
        self.quantised_values = _cat(self.quantised_values, values)
        self.quantised_length += count
        self.keys = self.keys[..., count:, :].clone()
        self.values = self.values[..., count:, :].clone()

    # -- cutting back ------------------------------------------------------------------------------------

    def crop(self, max_length: int) -> None:
        """Keep the first ``max_length`` tokens (negative: drop that many). Within the residual only the
        residual changes; a cut into the quantised part keeps the surviving codes and their groups'
        statistics as they were (the last key group may then be short)."""
        if max_length < 0:
            max_length = self.get_seq_length() + max_length
        max_length = max(0, max_length)
        if self.get_seq_length() <= max_length:
            return
        if max_length >= self.quantised_length:
            keep = max_length - self.quantised_length
            self.keys = self.keys[..., :keep, :].clone()
            self.values = self.values[..., :keep, :].clone()
            return
        self.keys = self.keys[..., :0, :].clone()
        self.values = self.values[..., :0, :].clone()
        self.quantised_length = max_length
        if max_length == 0 or self.quantised_keys is None or self.quantised_values is None:
            self.quantised_keys = self.quantised_values = None
            return
        groups = -(-max_length // self.group_size)
        qk, qv = self.quantised_keys, self.quantised_values
        self.quantised_keys = Quantised(
            qk.codes[..., :max_length, :].clone(),
            qk.scale[..., :groups, :].clone(),
            qk.zero[..., :groups, :].clone(),
        )
        self.quantised_values = qv.map(lambda t: t[..., :max_length, :].clone())

    # -- batch reshuffles (beam search): every stored tensor moves along the batch axis alike -----------

    def _map_batch(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if not self.is_initialized:
            return
        self.keys, self.values = fn(self.keys), fn(self.values)
        if self.quantised_keys is not None and self.quantised_values is not None:
            self.quantised_keys = self.quantised_keys.map(fn)
            self.quantised_values = self.quantised_values.map(fn)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._map_batch(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._map_batch(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._map_batch(lambda t: t[indices, ...])

    def reset(self) -> None:
        super().reset()
        self.quantised_keys = self.quantised_values = None
        self.quantised_length = 0
        if self.is_initialized:
            self.keys, self.values = self.keys[..., :0, :].clone(), self.values[..., :0, :].clone()

"""``ntk``: NTK-aware RoPE scaling: a larger rotary base, so low frequencies are interpolated and high ones
(which tell neighbours apart) are nearly kept."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longscope.methods.kv._rope_scaling import RescaledRope


@dataclass(frozen=True)
class NTKAware(RescaledRope):
    """The base b becomes b·s^(d/(d−2)) for factor s and rotary dimension d, so frequency i of d/2 becomes
    θᵢ·s^(−2i/(d−2)): the first is unchanged, the last is divided by exactly s (as PI would). Computed from
    the model's own frequencies, so the base need not be read from its config."""

    name = "ntk"
    description = (
        "NTK-aware scaling: the rotary base raised so the lowest frequency is interpolated by the factor"
    )

    def frequencies(self, inv_freq: torch.Tensor, trained: int) -> tuple[torch.Tensor, float]:
        dim = 2 * inv_freq.numel()
        index = torch.arange(inv_freq.numel(), dtype=torch.float64, device=inv_freq.device)
        shrink = torch.tensor(float(self.factor), dtype=torch.float64) ** (-2 * index / (dim - 2))
        return (inv_freq.double() * shrink).to(inv_freq.dtype), 1.0

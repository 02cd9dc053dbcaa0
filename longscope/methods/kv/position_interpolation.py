"""``pi``: linear position interpolation (Chen et al., 2023): positions squeezed by the factor so a longer
input stays inside the position range the model was trained on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longscope.methods.kv._rope_scaling import RescaledRope


@dataclass(frozen=True)
class PositionInterpolation(RescaledRope):
    """Position m is encoded as m / factor; dividing every rotary frequency by the factor is the same rotation
    and leaves the position ids (and the cache's bookkeeping) untouched. Reads up to factor × the trained
    window; untrained, so short inputs lose some resolution between neighbours."""

    name = "pi"
    description = "linear position interpolation: positions divided by the factor (no training)"

    def frequencies(self, inv_freq: torch.Tensor, trained: int) -> tuple[torch.Tensor, float]:
        return inv_freq / self.factor, 1.0

"""``yarn``: YaRN (Peng et al., 2023) without fine-tuning: per-frequency interpolation ramped by wavelength,
plus the attention temperature 0.1·ln(s) + 1."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from longscope.core import UsageError
from longscope.methods.kv._rope_scaling import RescaledRope


@dataclass(frozen=True)
class YaRN(RescaledRope):
    """Frequencies that turn more than ``beta_fast`` times over the trained window are kept (extrapolated),
    those that turn less than ``beta_slow`` times are divided by the factor (interpolated), and the ones between
    are mixed on a linear ramp over the dimension index, as the paper's reference code (and transformers'
    ``yarn`` rope type) computes it. Both cos and sin are multiplied by 0.1·ln(s) + 1, so attention logits
    scale by its square: the paper's √(1/t)."""

    name = "yarn"
    description = "YaRN: interpolate slow rotary frequencies, keep fast ones, temper attention (no training)"
    beta_fast: float = 32.0
    beta_slow: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.beta_slow < self.beta_fast:
            raise UsageError(
                f"method yarn: need 0 < beta_slow < beta_fast (got {self.beta_slow:g} and {self.beta_fast:g})"
            )

    def frequencies(self, inv_freq: torch.Tensor, trained: int) -> tuple[torch.Tensor, float]:
        half = inv_freq.numel()
        dim = 2 * half
        if half < 2:
            raise UsageError(
                f"method {self.label()}: the model's rotary dimension {dim} is too small for YaRN"
            )
        log_base = -math.log(float(inv_freq[1])) * dim / 2  # inv_freq[i] = base^(−2i/d)

        def dimension_turning(turns: float) -> float:
            # The (fractional) index whose frequency turns ``turns`` times over the trained window.
            return dim * math.log(trained / (turns * 2 * math.pi)) / (2 * log_base)

        low = max(math.floor(dimension_turning(self.beta_fast)), 0)
        high = min(math.ceil(dimension_turning(self.beta_slow)), dim - 1)
        if high == low:
            high += 0.001  # a single-index ramp would divide by zero
        index = torch.arange(half, dtype=torch.float32, device=inv_freq.device)
        ramp = ((index - low) / (high - low)).clamp(0, 1)
        kept = 1 - ramp  # 1: extrapolate (unchanged), 0: interpolate (divided by the factor)
        scaled = inv_freq / self.factor * (1 - kept) + inv_freq * kept
        return scaled, 0.1 * math.log(self.factor) + 1.0

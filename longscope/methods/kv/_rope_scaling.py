"""The shared part of the position-extension methods: a factor, the model's rotary module, and a swap of its
frequencies and attention scaling for the duration of one method's prefill and questions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from longscope.core import Backend, UsageError
from longscope.methods.base import ContextState, KVMethod


def find_rotary(model: Any, label: str) -> Any:
    """The module holding the model's rotary ``inv_freq``; a model without one is refused in one line."""
    for module in model.modules():
        if isinstance(getattr(module, "inv_freq", None), torch.Tensor):
            return module
    raise UsageError(
        f"method {label} stretches rotary positions (RoPE) and this model has none; use it with a Llama-style "
        "model such as smollm2"
    )


def trained_positions(model: Any, label: str) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "max_position_embeddings", None)
    if not window:
        raise UsageError(f"method {label} needs the model's trained window (config.max_position_embeddings)")
    return int(window)


@dataclass(frozen=True)
class PositionMethod(KVMethod):
    """A method that changes how positions are encoded, never which KV entries are kept.

    ``factor`` is how many times the trained window the model should read. Ratios and budgets are refused:
    every entry stays, so there is nothing for them to say.
    """

    extends_window: ClassVar[bool] = True
    factor: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ratio is not None or self.budget is not None:
            raise UsageError(
                f"method {self.name} changes positions and keeps every KV entry; give no ratio or budget, "
                f"e.g. {self.name}(factor=2)"
            )
        if not self.factor > 1:
            raise UsageError(
                f"method {self.name}: factor must be above 1 (got {self.factor:g}); it is how many times the "
                f"trained window to read, e.g. {self.name}(factor=2)"
            )

    def extended_window(self, trained: int) -> int | None:
        return int(self.factor * trained)

    def check_backend(self, backend: Backend) -> None:
        super().check_backend(backend)
        if backend.capabilities.in_process_model:
            find_rotary(backend.model, self.label())


@dataclass(frozen=True)
class RescaledRope(PositionMethod):
    """Position extension by new rotary frequencies (and an attention scaling) for the whole model: PI, NTK,
    YaRN. The model is never reloaded; its rotary module's buffers are swapped while the method runs."""

    kind: ClassVar[str] = ""

    def frequencies(self, inv_freq: torch.Tensor, trained: int) -> tuple[torch.Tensor, float]:
        """The scaled inverse frequencies (from the model's own) and the factor applied to cos and sin."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _scaled(self, model: Any) -> Iterator[None]:
        rotary = find_rotary(model, self.label())
        original, scaling = rotary.inv_freq, getattr(rotary, "attention_scaling", 1.0)
        inv_freq, attention = self.frequencies(original.float(), trained_positions(model, self.label()))
        rotary.inv_freq = inv_freq.to(device=original.device, dtype=original.dtype)
        rotary.attention_scaling = scaling * attention
        try:
            yield
        finally:
            rotary.inv_freq = original
            rotary.attention_scaling = scaling

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        # The cache holds keys already rotated: they must be rotated with the scaled frequencies too.
        with self._scaled(model):
            return super().prefill(model, input_ids, cache)

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        with self._scaled(model):
            yield

"""Short registry names for the common kvpress presses: snapkv, tova, adakv and the like.

Their parameters are the press's own arguments; None leaves kvpress's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.methods.kv._press_lookup import check_tree, parse_press
from longscope.methods.kv.kvpress_wrapper import PressMethod


@dataclass(frozen=True)
class NamedPress(PressMethod):
    """A press under a short registry name; its dataclass fields other than ratio/budget/query_aware are press
    arguments."""

    press_class: ClassVar[str] = ""

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        args = {
            key: value
            for key, value in vars(self).items()
            if key not in ("ratio", "budget", "query_aware") and value is not None
        }
        return self.press_class, args


@dataclass(frozen=True)
class SnapKV(NamedPress):
    name = "snapkv"
    description = "SnapKV (kvpress): keeps the entries the last window of the context attends to most"
    press_class = "SnapKVPress"
    window_size: int | None = None
    kernel_size: int | None = None


@dataclass(frozen=True)
class StreamingLLM(NamedPress):
    name = "streaming-llm"
    description = (
        "StreamingLLM (kvpress): the first n_sink entries (attention sinks) and the most recent ones"
    )
    press_class = "StreamingLLMPress"
    n_sink: int | None = None


@dataclass(frozen=True)
class ExpectedAttention(NamedPress):
    name = "expected-attention"
    description = (
        "Expected Attention (kvpress): scores entries by the attention future queries are expected to give"
    )
    press_class = "ExpectedAttentionPress"
    n_future_positions: int | None = None
    n_sink: int | None = None
    use_covariance: bool | None = None
    use_vnorm: bool | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class Knorm(NamedPress):
    name = "knorm"
    description = "Knorm (kvpress): keeps the entries whose keys have the smallest norm"
    press_class = "KnormPress"


@dataclass(frozen=True)
class TOVA(NamedPress):
    name = "tova"
    description = "TOVA (kvpress): keeps the entries the last context token attends to most"
    press_class = "TOVAPress"


@dataclass(frozen=True)
class PyramidKV(NamedPress):
    name = "pyramidkv"
    description = (
        "PyramidKV (kvpress): SnapKV with more entries in lower layers; the total over layers is kept"
    )
    press_class = "PyramidKVPress"
    window_size: int | None = None
    kernel_size: int | None = None
    beta: int | None = None

    def effective_ratio(self, context_tokens: int) -> float:
        """PyramidKV splits ``n × (1 − r)`` over the layers and rounds each share; an exact ``1 − kept/n`` makes
        the shares add up to exactly ``kept`` per layer on average (its fallback, too, rounds rather than
        truncates)."""
        keep = self.kept(context_tokens)
        return 0.0 if keep >= context_tokens else 1.0 - keep / context_tokens


@dataclass(frozen=True)
class ObservedAttention(NamedPress):
    name = "observed-attention"
    description = (
        "observed attention / H2O (kvpress): the entries the context attended to most; eager prefill"
    )
    press_class = "ObservedAttentionPress"


@dataclass(frozen=True)
class WrapperPress(NamedPress):
    """A press that wraps another: ``press`` is the inner press's short name or kvpress name with arguments,
    e.g. ``adakv(press=snapkv(window_size=32)):0.5``."""

    press: str = "snapkv"

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_press(self.press, f"method {self.name}")  # an unknown inner press fails here, with the list
        check_tree(self.make_press())


@dataclass(frozen=True)
class AdaKV(WrapperPress):
    name = "adakv"
    description = (
        "AdaKV (kvpress) around a scorer press (default snapkv): a budget shared across heads; "
        "dropped entries are masked, not removed"
    )
    press_class = "AdaKVPress"
    alpha_safeguard: float | None = None


@dataclass(frozen=True)
class Chunked(WrapperPress):
    name = "chunked"
    description = "ChunkPress (kvpress): a scorer press (default snapkv) applied to each chunk of the context"
    press_class = "ChunkPress"
    chunk_length: int | None = None


@dataclass(frozen=True)
class Finch(NamedPress):
    name = "finch"
    description = (
        "FINCH (kvpress): SnapKV-like selection whose window is the question, prefilled with the context "
        "(query-aware only); the kept keys are re-rotated to consecutive positions"
    )
    press_class = "FinchPress"
    query_aware: bool = True
    chunk_length: int | None = None
    normalize_scores: bool | None = None
    rerotate_keys: bool | None = None

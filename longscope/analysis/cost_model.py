"""The analytic cost model: KV-cache bytes, prefill and decode time, concurrency and swap cost of a context."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from longscope.analysis.hardware import Hardware
from longscope.core import UsageError

DTYPE_BYTES = {
    "fp32": 4.0, "float32": 4.0, "bf16": 2.0, "bfloat16": 2.0, "fp16": 2.0, "float16": 2.0,
    "fp8": 1.0, "int8": 1.0, "int4": 0.5,
}  # fmt: skip


def dtype_bytes(name: str) -> float:
    try:
        return DTYPE_BYTES[name.strip().lower()]
    except KeyError:
        raise UsageError(f"unknown dtype {name!r}; known: fp32, bf16, fp16, fp8, int8, int4") from None


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that decide its memory and compute per token.

    Parameters are counted for the Llama family (gated MLP, grouped-query attention), which covers the
    presets and most open models; a config's own published total is not needed.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    qkv_bias: bool = False
    dtype: str = "bf16"

    @property
    def bytes_per_value(self) -> float:
        return dtype_bytes(self.dtype)

    @property
    def layer_params(self) -> int:
        """Weights inside the transformer layers: every one is used by every token."""
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        if self.qkv_bias:
            attention += self.head_dim * (self.heads + 2 * self.kv_heads)
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attention + mlp + 2 * self.hidden) + self.hidden

    @property
    def params(self) -> int:
        embeddings = self.vocab * self.hidden
        return self.layer_params + embeddings * (1 if self.tied_embeddings else 2)

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_value

    def kv_bytes(self, tokens: int) -> float:
        """Keys and values of every layer for every token: 2 · layers · KV heads · head size · tokens · bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * tokens * self.bytes_per_value

    def prefill_flops(self, tokens: int) -> float:
        """2 FLOPs per weight per token in the layers, plus causal attention (QKᵀ and AV over half the square),
        plus the output head for the one position whose logits a generation needs. Embedding lookups are free.
        """
        attention = 2 * self.layers * tokens**2 * self.heads * self.head_dim
        return 2.0 * self.layer_params * tokens + attention + 2.0 * self.vocab * self.hidden

    def decode_flops(self, context: int) -> float:
        return 2.0 * (self.layer_params + self.vocab * self.hidden) + 4.0 * self.layers * context * (
            self.heads * self.head_dim
        )

    def decode_bytes(self, context: int) -> float:
        """Bytes read per generated token: the layer weights, the output head and the whole KV cache."""
        return (self.layer_params + self.vocab * self.hidden) * self.bytes_per_value + self.kv_bytes(context)

    def describe(self) -> str:
        return (
            f"{self.name}: {self.layers} layers, {self.heads} heads, {self.kv_heads} KV heads, head size "
            f"{self.head_dim}, {_count(self.params)} parameters, {self.dtype}"
        )


def _count(value: float) -> str:
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"


# Published shapes (the models' config.json files on the hub), typed in so they work offline.
PRESETS: dict[str, ModelShape] = {
    "llama-3-8b": ModelShape("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256),
    "llama-3-70b": ModelShape("llama-3-70b", 80, 8192, 64, 8, 128, 28672, 128256),
    "qwen2.5-7b": ModelShape("qwen2.5-7b", 28, 3584, 28, 4, 128, 18944, 152064, qkv_bias=True),
    "mistral-7b": ModelShape("mistral-7b", 32, 4096, 32, 8, 128, 14336, 32768),
}
# SmolLM2-135M-Instruct's published shape, used when the bundled model has not been converted yet.
SMOLLM2 = ModelShape("smollm2-135m-instruct", 30, 576, 9, 3, 64, 1536, 49152, tied_embeddings=True)


def shape_from_config(config: dict[str, Any], name: str, dtype: str | None = None) -> ModelShape:
    """Read a transformers config.json (a multimodal one's text part) into a shape."""
    text = config.get("text_config") or config
    needed = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
    missing = [key for key in needed if text.get(key) is None]
    if missing:
        raise UsageError(
            f"{name}: config lacks {', '.join(missing)}; give a decoder-only transformers config"
        )
    heads = int(text["num_attention_heads"])
    hidden = int(text["hidden_size"])
    stored = text.get("torch_dtype") or text.get("dtype") or "bfloat16"
    return ModelShape(
        name=name,
        layers=int(text["num_hidden_layers"]),
        hidden=hidden,
        heads=heads,
        kv_heads=int(text.get("num_key_value_heads") or heads),
        head_dim=int(text.get("head_dim") or hidden // heads),
        intermediate=int(text["intermediate_size"]),
        vocab=int(text["vocab_size"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        qkv_bias=bool(text.get("attention_bias", False)) or text.get("model_type") == "qwen2",
        dtype=dtype or (stored if str(stored).lower() in DTYPE_BYTES else "bf16"),
    )


def _read_config(path: Path, name: str, dtype: str | None) -> ModelShape:
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"{path} has no config.json; give a model directory or a config.json file")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {file}: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{file} is not a transformers config (not a JSON object)")
    return shape_from_config(config, name, dtype)


def _hub_config(model_id: str) -> dict[str, Any] | None:
    """A hub model's config from the local Hugging Face cache only: reports never reach the network."""
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model_id, local_files_only=True).to_dict()
    except Exception:  # noqa: BLE001 - not cached, or not a transformers model: no shape, said by the caller
        return None


def model_shape(spec: str, dtype: str | None = None) -> ModelShape:
    """A shape by preset name, ``smollm2`` (the bundled model), ``hf:PATH`` or a path to a config.json or its
    directory. ``dtype`` overrides the weights' and cache's dtype (bf16 unless the config says otherwise)."""
    key = spec.strip()
    if dtype is not None:
        dtype_bytes(dtype)  # fail on a bad dtype before anything else
    if key.lower() in PRESETS:
        return replace(PRESETS[key.lower()], dtype=dtype or "bf16")
    if key.lower() == "smollm2":
        try:
            from longscope.bundled import converted_dir

            folder = converted_dir()
        except UsageError:
            folder = None
        if folder is not None and (folder / "config.json").is_file():
            return replace(_read_config(folder, SMOLLM2.name, None), dtype=dtype or "bf16")
        return replace(SMOLLM2, dtype=dtype or "bf16")
    target = key[3:] if key.startswith("hf:") else key
    path = Path(target).expanduser()
    if path.exists():
        return _read_config(path, path.name if path.is_dir() else path.parent.name, dtype)
    if key.startswith("hf:"):
        cached = _hub_config(target)
        if cached is not None:
            return shape_from_config(cached, target.split("/")[-1], dtype)
    raise UsageError(
        f"unknown model {spec!r}; give a preset ({', '.join([*PRESETS, 'smollm2'])}), "
        "a config.json or a model directory"
    )


@dataclass(frozen=True)
class Prediction:
    """What one request of ``tokens`` context costs on one machine."""

    tokens: int
    kv_bytes: float
    weight_bytes: float
    prefill_flops: float
    prefill_s: float  # time to first token
    decode_s: float  # per generated token, at this context
    concurrent: int  # requests of this context whose caches fit beside the weights
    swap_s: float | None  # moving one request's cache to host memory (or back); None without a host link
    prefill_bound: str  # "compute" or "memory"
    decode_bound: str


def predict(shape: ModelShape, hw: Hardware, tokens: int) -> Prediction:
    """Roofline estimates: each phase takes the longer of its compute time and its memory-traffic time."""
    if tokens < 1:
        raise UsageError(f"context must be at least one token (got {tokens})")
    kv = shape.kv_bytes(tokens)
    flops = shape.prefill_flops(tokens)
    prefill_compute = flops / hw.flops
    # Prefill reads the weights once and writes the cache once, however long the prompt.
    prefill_memory = (shape.weight_bytes + kv) / hw.bandwidth
    decode_compute = shape.decode_flops(tokens) / hw.flops
    decode_memory = shape.decode_bytes(tokens) / hw.bandwidth
    free = hw.memory_bytes * hw.usable_memory - shape.weight_bytes
    return Prediction(
        tokens=tokens,
        kv_bytes=kv,
        weight_bytes=shape.weight_bytes,
        prefill_flops=flops,
        prefill_s=max(prefill_compute, prefill_memory),
        decode_s=max(decode_compute, decode_memory),
        concurrent=max(0, math.floor(free / kv)) if free > 0 else 0,
        swap_s=None if hw.host_link_bytes_s is None else kv / hw.host_link_bytes_s,
        prefill_bound="compute" if prefill_compute >= prefill_memory else "memory",
        decode_bound="compute" if decode_compute >= decode_memory else "memory",
    )


def percent_error(predicted: float, measured: float) -> float:
    """Signed error of a prediction in percent of the measurement (positive: predicted too high)."""
    return 100.0 * (predicted - measured) / measured

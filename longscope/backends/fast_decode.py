"""A one-token decode step for Llama-style models on a CPU, with the weights laid out for one-row products.

Decoding a token reads every weight once, so its speed is set by memory bandwidth; through the model's own
forward a CPU got about a third of that. Where the time went: ``F.linear`` multiplies one row by an [out, in]
weight at 60-80 % of the speed of the same product against a pre-transposed [in, out] copy; the CPU attention
kernel for one query position took most of a 4k-context step; and every small operation that opens a parallel
region stalls when other processes share the cores (the attention kernel waited tens of milliseconds per layer
on a loaded machine). This step holds the projections fused (q/k/v and gate/up, so a layer makes four
products) in the layout each precision's one-row product reads fastest (see ``_relaid``), attends through
CPU flash attention on one thread (the grouped query heads as rows of one call, so each key is read once), and
writes into the same ``DynamicCache`` the model filled, so cache sizes and byte counts read as before. The
rotary module is the model's own, so a rescaled rotary (a position method) is honoured; the model's RMSNorms
run as one fused operation each (the unfused norm is six small operations, 61 times a step). The model's
projection and output-head weights become views of those layouts, so the weights are held once, as before (a
copy would double a CPU user's memory for the model).

In fp32, where the system's C compiler builds it, the token runs as one call into the C step instead
(decode_kernel.py): the products there read the weights at 2-3x torch's one-row rate, and the weights are not
re-laid at all. The torch step below is what runs in bf16 and where no compiler is found.

The greedy tokens match the model's forward (checked on a tiny model and the bundled one); the logits agree to
rounding, not bit for bit, since the products are summed in another order. ``DecodeStep.build`` says None for a
model it cannot run exactly (another architecture, sliding windows, biases on the output projections, a GPU),
and ``usable`` says False once hooks, a patched forward or edited weights would make it skip something.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from longscope.backends.decode_kernel import KernelStep, library
from longscope.methods.kv._flash_parts import FLASH_CPU

# Architectures whose decoder layer is exactly: x + o(attn(rope(qkv(norm(x))))), then x + down(silu(gate)*up).
_LLAMA_LIKE = {"llama", "qwen2"}
_FLOATS = (torch.float32, torch.bfloat16)
# Norm classes whose forward is exactly weight * (x / rms(x)) computed in fp32, which torch's rms_norm fuses.
_PLAIN_RMS_NORMS = (LlamaRMSNorm, Qwen2RMSNorm)


class DecodeStep:
    """``step(token, cache, cos, sin) -> logits`` for one sequence; built once per model by ``build`` (which
    re-lays the model's projection weights in place: same values, another memory layout)."""

    def __init__(self, model: Any) -> None:
        inner = model.model
        config = model.config
        self.model = model
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scaling = inner.layers[0].self_attn.scaling
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm
        self.rotary = inner.rotary_emb
        # In fp32 the C step (decode_kernel.py) where it builds: the whole token in one parallel region over the
        # model's own weights, which it leaves as they are. Otherwise the torch step below, for which the weights
        # are re-laid.
        self.kernel = self._kernel(model)
        self.layers = [] if self.kernel else [self._layer_weights(layer) for layer in inner.layers]
        # The output head is re-laid like the projections (in fp32 its product ran 1.6x faster transposed, one
        # thread; it is a fifth of the weights). Tied to the embeddings, their fp32 lookups then read strided
        # rows: a 4k prompt's embedding took 36 ms instead of 1.4, repaid by the first dozen decoded tokens.
        self.lm_head_t = None if self.kernel else _relaid([model.lm_head])
        self.lm_head_bias = model.lm_head.bias
        # Threads for the attention: one by default, since each layer's attention is a few small operations
        # whose parallel regions stalled for tens of milliseconds per layer when other processes
        # shared the cores; 0 means the process's setting (bench/decode_speed.py measures both).
        self.attention_threads = 1
        # One query position over the cache through CPU flash attention (grouped heads as its rows). In bf16 it
        # took 0.15-0.3x the time of two matrix products and a softmax (a bf16 product with transposed keys
        # takes a slow path) and doubled the step at 1k; in fp32 it is neutral inside the step (0.65x alone at
        # 4k). The products remain where the op is missing.
        self.flash = FLASH_CPU is not None
        # What the copies were made from: a weight replaced or edited in place afterwards retires this step.
        self._sources = self._source_versions()

    @classmethod
    def build(cls, model: Any) -> DecodeStep | None:
        """A decode step for ``model``, or None where this step would not compute what its forward does."""
        config = getattr(model, "config", None)
        if config is None or getattr(config, "model_type", None) not in _LLAMA_LIKE:
            return None
        first = next(model.parameters())
        if first.device.type != "cpu" or first.dtype not in _FLOATS:
            return None
        if getattr(config, "hidden_act", None) != "silu" or getattr(
            config, "_attn_implementation", None
        ) not in (
            "sdpa",
            "eager",
        ):
            return None
        if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
            return None
        if getattr(config, "use_sliding_window", False) or getattr(config, "attn_logit_softcapping", None):
            return None
        layers = model.model.layers
        for layer in layers:
            attn, mlp = layer.self_attn, layer.mlp
            if attn.o_proj.bias is not None or any(
                getattr(mlp, name).bias is not None for name in ("gate_proj", "up_proj", "down_proj")
            ):
                return None
        return cls(model)

    def _kernel(self, model: Any) -> KernelStep | None:
        norms = [self.final_norm] + [
            norm
            for layer in model.model.layers
            for norm in (layer.input_layernorm, layer.post_attention_layernorm)
        ]
        if any(type(norm) not in _PLAIN_RMS_NORMS for norm in norms):
            return None
        lib = library()
        shape = {"heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim}
        if lib is None or not KernelStep.supports(lib, model, **shape):
            return None
        return KernelStep(lib, model, **shape)

    def _layer_weights(self, layer: Any) -> dict[str, Any]:
        attn, mlp = layer.self_attn, layer.mlp
        qkv = [attn.q_proj, attn.k_proj, attn.v_proj]
        bias = None
        if any(p.bias is not None for p in qkv):
            bias = torch.cat(
                [p.bias if p.bias is not None else p.weight.new_zeros(p.out_features) for p in qkv]
            )
        return {
            "input_norm": layer.input_layernorm,
            "post_norm": layer.post_attention_layernorm,
            "qkv_t": _relaid(qkv),
            "qkv_bias": bias,
            "o_t": _relaid([attn.o_proj]),
            "gate_up_t": _relaid([mlp.gate_proj, mlp.up_proj]),
            "down_t": _relaid([mlp.down_proj]),
            "intermediate": mlp.gate_proj.out_features,
        }

    def _source_versions(self) -> list[tuple[int, int]]:
        # Tensors made under inference mode keep no version counter (and cannot be edited outside it).
        return [(p.data_ptr(), -1 if p.is_inference() else p._version) for p in self.model.parameters()]

    def usable(self) -> bool:
        """Whether the model is as it was when the copies were made: same weights, no hooks, no patched
        forward (a method that changes attention must be seen by the step, and this step would skip it)."""
        if self._source_versions() != self._sources:
            return False
        for module in self.model.modules():
            if module._forward_hooks or module._forward_pre_hooks or "forward" in vars(module):
                return False
            # kvpress's head-wise presses hide entries through its global attention patch, per module.
            if getattr(module, "masked_key_indices", None) is not None:
                return False
        implementation = getattr(self.model.config, "_attn_implementation", None)
        if implementation == "sdpa":
            # An attention function replaced process-wide would compute something this step does not; kvpress's
            # wrapper is the plain function unless a module carries masked entries (checked above).
            function = ALL_ATTENTION_FUNCTIONS.get("sdpa")
            return function is sdpa_attention_forward or function.__module__ == "kvpress.attention_patch"
        return implementation == "eager"

    def positions(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary cos and sin for positions start .. start+count-1, from the model's own rotary module."""
        ids = torch.arange(start, start + count).unsqueeze(0)
        cos, sin = self.rotary(self.embed[:1].unsqueeze(0), ids)
        return cos[0], sin[0]

    def step(self, token: int, cache: Any, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | None:
        """The logits [1, vocab] after feeding ``token``; ``cos``/``sin`` are its position's rows [head_dim].
        None (the cache untouched) where the C step cannot write this cache in place: run the model's forward."""
        if self.kernel is not None:
            return self.kernel.run(token, cache.layers, cos, sin)
        threads = torch.get_num_threads()
        try:
            return self._step(token, cache, cos, sin, threads)
        finally:
            torch.set_num_threads(threads)

    def _step(
        self, token: int, cache: Any, cos: torch.Tensor, sin: torch.Tensor, threads: int
    ) -> torch.Tensor:
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        group = heads // kv_heads
        q_width, kv_width = heads * dim, kv_heads * dim
        half = dim // 2
        # rotate_half(t) * sin == (t's halves swapped) * (sin with its first half negated): the same products,
        # exactly, with one flip in place of a slice, a negation and a concatenation.
        signed_sin = torch.cat((-sin[:half], sin[half:]))
        attention_threads = self.attention_threads or threads
        x = self.embed[token].view(1, 1, -1)
        for index, weights in enumerate(self.layers):
            h = self._norm(weights["input_norm"], x)
            qkv = h @ weights["qkv_t"]
            if weights["qkv_bias"] is not None:
                qkv = qkv + weights["qkv_bias"]
            # Queries and keys are rotated together: one set of small operations per layer instead of two.
            qk = qkv[..., : q_width + kv_width].view(heads + kv_heads, 2, half)
            qk = qk.view(heads + kv_heads, dim) * cos + qk.flip(-2).view(heads + kv_heads, dim) * signed_sin
            q = qk[:heads].view(1, kv_heads, group, dim)
            k = qk[heads:].view(1, kv_heads, 1, dim)
            v = qkv[..., q_width + kv_width :].view(1, kv_heads, 1, dim)
            keys, values = cache.update(k, v, index, {"cos": cos, "sin": sin})
            # Attention for one position is a few small products whose parallel regions cost more than they
            # save on a loaded machine (see attention_threads); the query heads sharing a key head are rows of
            # one product, so each key is read once.
            if attention_threads != threads:
                torch.set_num_threads(attention_threads)
            if self.flash:
                attended = FLASH_CPU(q, keys, values, 0.0, False, scale=self.scaling)[0].view(1, 1, q_width)
            else:
                scores = torch.matmul(q, keys.transpose(-1, -2)) * self.scaling
                probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
                attended = torch.matmul(probs, values).view(1, 1, q_width)
            if attention_threads != threads:
                torch.set_num_threads(threads)
            x = x + attended @ weights["o_t"]
            h = self._norm(weights["post_norm"], x)
            gate_up = h @ weights["gate_up_t"]
            gate, up = gate_up.split(weights["intermediate"], dim=-1)
            x = x + (torch.nn.functional.silu(gate) * up) @ weights["down_t"]
        logits = self._norm(self.final_norm, x) @ self.lm_head_t
        if self.lm_head_bias is not None:
            logits = logits + self.lm_head_bias
        return logits.view(1, -1)

    def _norm(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        """The model's RMSNorm ``module`` on ``x`` as one fused operation where it computes the same thing
        (the model's own module otherwise): the unfused norm is six small operations, 61 times a step."""
        if type(module) not in _PLAIN_RMS_NORMS:
            return module(x)
        if x.dtype == torch.float32:
            return torch.nn.functional.rms_norm(
                x, module.weight.shape, module.weight, module.variance_epsilon
            )
        # In lower precision the module normalises in fp32 and rounds before scaling by its weight.
        normed = torch.nn.functional.rms_norm(x.float(), module.weight.shape, eps=module.variance_epsilon)
        return module.weight * normed.to(x.dtype)


def _relaid(linears: list[Any]) -> torch.Tensor:
    """One fused [in, sum of outs] operand for ``linears``' one-row products; their weights become views of it,
    so the model keeps a single copy of its weights (its own F.linear runs on the same memory).

    fp32 gets a transposed, contiguous [in, out] layout: its one-row product read it at 1.4-1.6x the speed of
    the model's own [out, in] layout. bf16 keeps the [out, in] layout and the operand is its transposed view:
    on a CPU without bf16 instructions a bf16 row times a contiguous [in, out] matrix took a slow path, 22x
    slower than the same product on [out, in] rows (0.6 against 14 GB/s for the bundled model's products)."""
    weights = torch.cat([linear.weight.detach() for linear in linears])
    fused = weights.t().contiguous() if weights.dtype == torch.float32 else weights.t()
    start = 0
    with torch.no_grad():
        for linear in linears:
            width = linear.out_features
            linear.weight.data = fused[:, start : start + width].t()
            start += width
    return fused


class TokenFeeder:
    """Feeds the chosen tokens one at a time into ``cache`` at positions ``position``, ``position + 1``, ... and
    returns the logits after each [1, vocab]: through ``step`` where given and able to write the cache in place
    (room reserved by the caller), else through the model's forward at that token's position. ``fed`` counts
    the tokens fed, which a session drops again afterwards. One loop for the plain requests and the sessions."""

    def __init__(
        self,
        model: Any,
        step: DecodeStep | None,
        cache: Any,
        position: int,
        budget: int,
        device: torch.device,
    ) -> None:
        self.model, self.step, self.cache = model, step, cache
        self.position, self.device = position, device
        self.fed = 0
        if step is not None:
            self.cos, self.sin = step.positions(position, budget)

    def __call__(self, token: int) -> torch.Tensor:
        logits = None
        if self.step is not None:
            logits = self.step.step(token, self.cache, self.cos[self.fed], self.sin[self.fed])
        if logits is None:  # None: the step cannot write this cache in place, and left it untouched
            out = self.model(
                input_ids=torch.tensor([[token]], device=self.device),
                past_key_values=self.cache,
                position_ids=torch.tensor([[self.position + self.fed]], device=self.device),
                use_cache=True,
            )
            logits = out.logits[:, -1, :]
        self.fed += 1
        return logits

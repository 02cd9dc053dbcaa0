"""The C decode step (decode_kernel.c): compiled once per machine with the system's C compiler, cached, loaded
with ctypes, and run over the model's own fp32 weights and the caller's reserved KV cache.

Why C: the step reads every weight once per token, and torch's one-row products read them at 14-17 GB/s on the
development machine where one parallel region streaming each thread's rows read 42-52 GB/s; the 240 small
operations between the products cost as much again in dispatch. Where no compiler is found or the build fails,
``library()`` says None and the torch step runs as before (``LONGSCOPE_DECODE_KERNEL=0`` asks for that too).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import torch

from longscope.cache import cache_dir

SOURCE = Path(__file__).with_name("decode_kernel.c")
# -march=native: the library is built on the machine that runs it (and cached per CPU), so it may use every
# vector instruction that CPU has. No -ffast-math: the attention's running maximum starts at -inf.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
PORTABLE_FLAGS = ["-O3", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]

_P = ctypes.c_void_p


class Model(ctypes.Structure):
    """Mirrors ``Model`` in decode_kernel.c, field for field."""

    _fields_ = [
        *[(name, ctypes.c_int) for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "inter", "vocab")],
        ("eps", ctypes.c_float),
        ("scaling", ctypes.c_float),
        *[(name, _P) for name in ("input_norm", "post_norm", "wq", "wk", "wv", "bq", "bk", "bv", "wo", "wg", "wu", "wd")],
        *[(name, _P) for name in ("final_norm", "lm_head", "lm_bias")],
    ]  # fmt: skip


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compile(compiler: str, target: Path) -> bool:
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        built = Path(folder) / target.name
        for flags in (FLAGS, PORTABLE_FLAGS):
            command = [compiler, *flags, str(SOURCE), "-o", str(built), "-lm"]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                os.replace(built, target)  # whole or not at all: a half-written library is never loaded
                return True
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"longscope: the C decode step did not build ({last}); decoding with torch", file=sys.stderr)
        return False


@functools.cache
def library() -> ctypes.CDLL | None:
    """The compiled step, built on first use; None where it cannot be (no compiler, a failed build, or
    LONGSCOPE_DECODE_KERNEL=0)."""
    if os.environ.get("LONGSCOPE_DECODE_KERNEL", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    key = hashlib.sha256(
        "\n".join([SOURCE.read_text(), " ".join(FLAGS), compiler, platform.machine(), _cpu_name()]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / "kernels" / f"decode-{key}.so"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() and not _compile(compiler, target):
            return None
        lib = ctypes.CDLL(str(target))
    except OSError as exc:  # a cache folder that cannot be written, a library that cannot be loaded
        print(f"longscope: the C decode step is unavailable ({exc}); decoding with torch", file=sys.stderr)
        return None
    lib.ls_decode.restype = ctypes.c_int
    lib.ls_decode.argtypes = [ctypes.POINTER(Model), _P, _P, _P, _P, _P, _P, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, _P, _P]  # fmt: skip
    lib.ls_scratch_floats.restype = ctypes.c_long
    lib.ls_scratch_floats.argtypes = [ctypes.POINTER(Model), ctypes.c_int, ctypes.c_int]
    lib.ls_limits.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    return lib


def _pointers(tensors: list[torch.Tensor | None]) -> Any:
    return (_P * len(tensors))(*[None if t is None else t.data_ptr() for t in tensors])


class KernelStep:
    """The C step bound to one model's weights: ``run(token, layers, cos, sin)`` -> logits [1, vocab], or None
    when a cache layer cannot take the position in place (the caller then runs another step)."""

    def __init__(self, lib: ctypes.CDLL, model: Any, *, heads: int, kv_heads: int, head_dim: int) -> None:
        inner, config = model.model, model.config
        self.lib = lib
        layers = inner.layers
        attns, mlps = [layer.self_attn for layer in layers], [layer.mlp for layer in layers]

        def weights(modules: list[Any], name: str, part: str = "weight") -> list[torch.Tensor | None]:
            return [getattr(getattr(module, name), part) for module in modules]

        arrays = {
            "input_norm": [layer.input_layernorm.weight for layer in layers],
            "post_norm": [layer.post_attention_layernorm.weight for layer in layers],
            "wq": weights(attns, "q_proj"),
            "wk": weights(attns, "k_proj"),
            "wv": weights(attns, "v_proj"),
            "bq": weights(attns, "q_proj", "bias"),
            "bk": weights(attns, "k_proj", "bias"),
            "bv": weights(attns, "v_proj", "bias"),
            "wo": weights(attns, "o_proj"),
            "wg": weights(mlps, "gate_proj"),
            "wu": weights(mlps, "up_proj"),
            "wd": weights(mlps, "down_proj"),
        }
        # The C side reads raw memory: it holds the tensors themselves (detached, so a parameter given new data
        # later, as torch's step does when it re-lays weights, leaves this memory alive and unchanged).
        arrays = {name: [None if t is None else t.detach() for t in group] for name, group in arrays.items()}
        self._held = [t for group in arrays.values() for t in group if t is not None]
        self._arrays = {name: _pointers(group) for name, group in arrays.items()}
        self.lm_head = model.lm_head.weight.detach()
        self.lm_bias = None if model.lm_head.bias is None else model.lm_head.bias.detach()
        self.final_norm = inner.norm.weight.detach()
        self.vocab = self.lm_head.shape[0]
        self.model_struct = Model(
            layers=len(layers), hidden=config.hidden_size, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
            inter=mlps[0].gate_proj.out_features, vocab=self.vocab,
            eps=float(layers[0].input_layernorm.variance_epsilon), scaling=float(attns[0].scaling),
            **{name: ctypes.cast(array, _P) for name, array in self._arrays.items()},
            final_norm=self.final_norm.data_ptr(), lm_head=self.lm_head.data_ptr(),
            lm_bias=None if self.lm_bias is None else self.lm_bias.data_ptr(),
        )  # fmt: skip
        self.kv_heads, self.head_dim = kv_heads, head_dim
        self.embed = inner.embed_tokens.weight.detach()
        self._scratch: torch.Tensor | None = None
        self._scratch_threads = -1
        self._bound: list[weakref.ref] = []

    @staticmethod
    def supports(lib: ctypes.CDLL, model: Any, *, heads: int, kv_heads: int, head_dim: int) -> bool:
        """fp32 on a CPU, every weight a contiguous tensor, and heads within the C step's fixed limits (checked
        here, before a cache is advanced, rather than refused by the step)."""
        tensors = list(model.parameters())
        if any(t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous() for t in tensors):
            return False
        max_group, max_head_dim = ctypes.c_int(), ctypes.c_int()
        lib.ls_limits(ctypes.byref(max_group), ctypes.byref(max_head_dim))
        group = heads // kv_heads
        return heads % kv_heads == 0 and group <= max_group.value and head_dim <= max_head_dim.value

    def _bind(self, layers: list[Any]) -> bool:
        """Whether the C step can write into these layers' buffers, with their pointers at hand. A set of
        buffers is checked once and its pointers kept (weakly: a finished answer's cache is not held alive), so
        the steps after the first skip ~60 tensor queries each (the Python around the C call was 3 % of a
        token at 1k)."""
        buffers = [
            getattr(layer, name, None) for name in ("_key_buffer", "_value_buffer") for layer in layers
        ]
        # A dead reference reads None, as does a layer without buffers (a quantised cache's): only a live
        # buffer may match, or a cache of another kind would be written through a freed buffer's pointers.
        if len(buffers) == len(self._bound) and all(
            t is not None and ref() is t for ref, t in zip(self._bound, buffers, strict=True)
        ):
            return True
        self._bound = []
        if any(not hasattr(layer, "has_room") for layer in layers):
            return False
        for buffer in buffers:
            if buffer is None or buffer.dtype != torch.float32 or buffer.device.type != "cpu":
                return False
            if buffer.dim() != 4 or buffer.shape[0] != 1 or buffer.shape[1] != self.kv_heads:
                return False
            if buffer.shape[3] != self.head_dim or buffer.stride(3) != 1 or buffer.stride(2) != self.head_dim:
                return False
        keys, values = buffers[: len(layers)], buffers[len(layers) :]
        if any(k.shape != v.shape or k.stride() != v.stride() for k, v in zip(keys, values, strict=True)):
            return False
        self._key_pointers, self._value_pointers = _pointers(keys), _pointers(values)
        self._strides = (ctypes.c_long * len(layers))(*[k.stride(1) for k in keys])
        self._bound = [weakref.ref(t) for t in buffers]
        return True

    def _slot(self, layers: list[Any]) -> int | None:
        """Advance every layer by one position in its reserved buffer (all or none): the index to write."""
        if not self._bind(layers):
            return None
        held = layers[0].keys.shape[-2]
        for layer in layers:
            if not layer.has_room() or layer.keys.shape[-2] != held:
                return None
        for layer in layers:
            layer.advance()
        return held

    def run(self, token: int, layers: list[Any], cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | None:
        if len(layers) != self.model_struct.layers:
            return None
        position = self._slot(layers)
        if position is None:
            return None
        threads = torch.get_num_threads()
        chunks = 2 * threads
        if self._scratch_threads != threads:
            size = self.lib.ls_scratch_floats(ctypes.byref(self.model_struct), threads, chunks)
            self._scratch = torch.empty(size, dtype=torch.float32)
            self._scratch_threads = threads
        cos, sin = cos.contiguous().float(), sin.contiguous().float()
        logits = torch.empty(1, self.vocab, dtype=torch.float32)
        status = self.lib.ls_decode(
            ctypes.byref(self.model_struct), self.embed[token].data_ptr(), cos.data_ptr(), sin.data_ptr(),
            self._key_pointers, self._value_pointers, self._strides, position, threads, chunks, logits.data_ptr(),
            self._scratch.data_ptr(),
        )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"the C decode step refused its input (status {status})")
        return logits

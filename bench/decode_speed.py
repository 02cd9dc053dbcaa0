"""Decode speed of the in-process backend on the bundled model: today's loop against the reserved-cache loop.

Usage: .venv/bin/python bench/decode_speed.py [--tokens 32] [--repeats 3]
Writes bench/results/decode_speed.json. At each context (1k, 4k) the two loops run alternately in one process,
best of ``--repeats``; both decode the same greedy tokens (checked). The bound is the memory-bandwidth limit:
bytes read per token (all weights, plus the KV cache at that context) over a measured copy bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from longscope.backends import smollm2
from longscope.backends.hf import reserve_cache

HERE = Path(__file__).resolve().parent


def copy_bandwidth(mb: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a large tensor copy (read + write counted), best of ``repeats``."""
    a = torch.ones(mb * (1 << 20) // 4)
    b = torch.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - started)
    return 2 * a.numel() * 4 / best


@torch.inference_mode()
def decode(model, ids: torch.Tensor, tokens: int, reserved: bool) -> tuple[float, list[int], int]:
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache, token, generated = out.past_key_values, int(out.logits[0, -1].argmax()), []
    started = time.perf_counter()
    if reserved:
        reserve_cache(cache, tokens)
    for _ in range(tokens):
        out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, int(out.logits[0, -1].argmax())
        generated.append(token)
    kv = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers) * 4
    return tokens / (time.perf_counter() - started), generated, kv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    backend = smollm2.load()
    model = backend.model
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth()
    rows = {}
    for context in (1024, 4096):
        ids = torch.randint(100, 40000, (1, context), generator=torch.Generator().manual_seed(context))
        best = {"today": 0.0, "reserved": 0.0}
        outputs, kv = {}, 0
        for _ in range(args.repeats):
            for name in best:
                rate, generated, kv = decode(model, ids, args.tokens, name == "reserved")
                best[name] = max(best[name], rate)
                outputs.setdefault(name, generated)
        bound = bandwidth / (weights + kv)
        rows[str(context)] = {
            "tok_s_today": round(best["today"], 2),
            "tok_s_reserved": round(best["reserved"], 2),
            "speedup": round(best["reserved"] / best["today"], 2),
            "bound_tok_s": round(bound, 1),
            "ratio_to_bound_today": round(best["today"] / bound, 3),
            "ratio_to_bound_reserved": round(best["reserved"] / bound, 3),
            "kv_bytes": kv,
            "identical_tokens": outputs["today"] == outputs["reserved"],
        }
        print(context, rows[str(context)], flush=True)
    result = {
        "model": backend.model_name,
        "precision": backend.precision,
        "weight_bytes": weights,
        "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "tokens": args.tokens,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "contexts": rows,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "decode_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Decode speed of the in-process backend on the bundled model: the model's forward against the decode step.

Usage: .venv/bin/python bench/decode_speed.py [--tokens 32] [--repeats 3] [--threads N] [--contexts 1024,4096]
Writes bench/results/decode_speed.json and prints, per context, tokens per second of both loops and their
ratio to the bandwidth bound. Each context is prefilled once; every run decodes from a copy of that cache,
the two loops alternating, best of ``--repeats``, and both must pick the same greedy tokens (checked).

- ``forward``: one ``model(...)`` call per token over the reserved cache (the loop before the decode step).
- ``step``: ``DecodeStep`` (backends/fast_decode.py), what ``HFBackend.generate`` now runs on a CPU.

The bound is the memory-bandwidth limit: the bytes one token must read (every weight once, plus the KV cache
held at that context) over the copy bandwidth of a buffer the size of the weights (read + write counted),
measured in the same process between the runs, best of all measurements.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import torch

from longscope.backends import smollm2
from longscope.backends.hf import reserve_cache

HERE = Path(__file__).resolve().parent


def copy_bandwidth(nbytes: int, repeats: int = 3) -> float:
    """Bytes per second of copying a buffer of ``nbytes`` (read + write counted), best of ``repeats``."""
    source = torch.ones(nbytes // 4)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - started)
    return 2 * nbytes / best


@torch.inference_mode()
def decode(backend, prefilled, context: int, tokens: int, loop: str) -> tuple[float, list[int]]:
    """Tokens per second of ``tokens`` greedy steps from a copy of the prefilled cache, and the tokens."""
    cache, token = copy.deepcopy(prefilled[0]), prefilled[1]
    model, step, generated = backend.model, backend.decode_step, []
    started = time.perf_counter()
    reserve_cache(cache, tokens)
    if loop == "step":
        cos, sin = step.positions(context, tokens)
        for i in range(tokens):
            token = int(step.step(token, cache, cos[i], sin[i]).argmax())
            generated.append(token)
    else:
        for _ in range(tokens):
            out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
            token = int(out.logits[0, -1].argmax())
            generated.append(token)
    return tokens / (time.perf_counter() - started), generated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--contexts", default="1024,4096")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backend = smollm2.load()
    assert backend.decode_step is not None, "the bundled model should get the decode step"
    model = backend.model
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(weights)
    loops = ("forward", "step")
    rows = {}
    for context in (int(c) for c in args.contexts.split(",")):
        ids = torch.randint(100, 40000, (1, context), generator=torch.Generator().manual_seed(context))
        with torch.inference_mode():
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        prefilled = (out.past_key_values, int(out.logits[0, -1].argmax()))
        kv = sum(layer.keys.numel() + layer.values.numel() for layer in prefilled[0].layers) * 4
        best = dict.fromkeys(loops, 0.0)
        outputs: dict[str, list[int]] = {}
        for _ in range(args.repeats):
            for loop in loops:
                rate, generated = decode(backend, prefilled, context, args.tokens, loop)
                best[loop] = max(best[loop], rate)
                outputs.setdefault(loop, generated)
            bandwidth = max(bandwidth, copy_bandwidth(weights))
        # The cache grows by one position a step; the middle of the run is its average size.
        kv_read = kv * (context + args.tokens / 2) / context
        bound = bandwidth / (weights + kv_read)
        rows[str(context)] = {
            "tok_s_forward": round(best["forward"], 2),
            "tok_s_step": round(best["step"], 2),
            "speedup": round(best["step"] / best["forward"], 2),
            "bound_tok_s": round(bound, 1),
            "ratio_to_bound_forward": round(best["forward"] / bound, 3),
            "ratio_to_bound_step": round(best["step"] / bound, 3),
            "kv_bytes_at_context": kv,
            "identical_tokens": outputs["forward"] == outputs["step"],
        }
        row = rows[str(context)]
        print(
            f"{context:>6} tokens: step {row['tok_s_step']} tok/s = {row['ratio_to_bound_step']:.2f} of the bound "
            f"{row['bound_tok_s']} (forward {row['tok_s_forward']} = {row['ratio_to_bound_forward']:.2f}; "
            f"{row['speedup']}x; identical tokens {row['identical_tokens']})",
            flush=True,
        )
    result = {
        "model": backend.model_name,
        "precision": backend.precision,
        "weight_bytes": weights,
        "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "tokens": args.tokens,
        "repeats": args.repeats,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "contexts": rows,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "decode_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

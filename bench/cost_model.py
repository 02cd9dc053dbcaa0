"""Measures the cost model's error on this machine: predicted against measured prefill, decode and KV bytes.

Usage: .venv/bin/python bench/cost_model.py [--model smollm2] [--lengths 1k,2k,4k] [--hardware cpu] [--refresh]
Writes bench/results/cost_model.json. The prompts are random token ids: cost depends on length, not content.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from longscope.analysis.cost_model import model_shape, percent_error, predict
from longscope.analysis.hardware import cpu_profile, hardware
from longscope.backends import resolve
from longscope.methods.base import cache_bytes
from longscope.spec import parse_lengths

HERE = Path(__file__).resolve().parent
DECODE_STEPS = 16


@torch.inference_mode()
def measure(model, tokens: int, repeats: int) -> tuple[float, float, int]:
    """Best-of-``repeats`` prefill seconds, mean seconds per decoded token after it, and the cache's bytes."""
    generator = torch.Generator().manual_seed(tokens)
    ids = torch.randint(100, model.config.vocab_size - 100, (1, tokens), generator=generator)
    best_prefill, best_decode, kv = float("inf"), float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        best_prefill = min(best_prefill, time.perf_counter() - started)
        kv = cache_bytes(out.past_key_values)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        started = time.perf_counter()
        for _ in range(DECODE_STEPS):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        best_decode = min(best_decode, (time.perf_counter() - started) / DECODE_STEPS)
    return best_prefill, best_decode, kv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lengths", default="1k,2k,4k")
    parser.add_argument("--hardware", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--refresh", action="store_true", help="measure this CPU again, not from the cache")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cost_model.json")
    args = parser.parse_args()

    backend = resolve(args.model)
    dtype = "fp32" if next(backend.model.parameters()).dtype == torch.float32 else "bf16"
    shape = model_shape(args.model, dtype)
    hw = cpu_profile(refresh=True) if args.refresh and args.hardware == "cpu" else hardware(args.hardware)
    measure(backend.model, 256, 1)  # warm-up: thread pools and allocator
    rows = []
    for tokens in parse_lengths(args.lengths):
        prefill, decode, kv = measure(backend.model, tokens, args.repeats)
        p = predict(shape, hw, tokens)
        held = tokens + DECODE_STEPS
        rows.append(
            {
                "tokens": tokens,
                "prefill_s": {"measured": prefill, "predicted": p.prefill_s,
                              "error_percent": percent_error(p.prefill_s, prefill)},
                "decode_s_per_token": {"measured": decode, "predicted": p.decode_s,
                                       "error_percent": percent_error(p.decode_s, decode)},
                "kv_bytes_after_prefill": {"measured": kv, "predicted": shape.kv_bytes(tokens),
                                           "error_percent": percent_error(shape.kv_bytes(tokens), kv)},
                "kv_bytes_predicted_after_decode": shape.kv_bytes(held),
            }
        )  # fmt: skip
        print(
            f"{tokens:>6} tokens  prefill {prefill:7.2f} s vs {p.prefill_s:7.2f} s "
            f"({percent_error(p.prefill_s, prefill):+6.1f}%)  decode {decode * 1e3:6.1f} ms vs "
            f"{p.decode_s * 1e3:6.1f} ms ({percent_error(p.decode_s, decode):+6.1f}%)  "
            f"KV {kv:,} vs {shape.kv_bytes(tokens):,.0f}"
        )
    prefill_errors = [abs(r["prefill_s"]["error_percent"]) for r in rows]
    decode_errors = [abs(r["decode_s_per_token"]["error_percent"]) for r in rows]
    result = {
        "model": shape.describe(),
        "hardware": {"name": hw.name, "description": hw.description, "peak_flops": hw.peak_flops,
                     "flops_used": hw.flops, "bandwidth_bytes_s": hw.bandwidth_bytes_s, "source": hw.source},
        "machine": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "prefill_mean_abs_error_percent": sum(prefill_errors) / len(prefill_errors),
        "decode_mean_abs_error_percent": sum(decode_errors) / len(decode_errors),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"mean absolute error: prefill {result['prefill_mean_abs_error_percent']:.1f}%, "
        f"decode {result['decode_mean_abs_error_percent']:.1f}%; wrote {args.out}"
    )


if __name__ == "__main__":
    main()

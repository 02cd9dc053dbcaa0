"""Λ-attention's prefill time against PI's on the bundled model past its 8k window, and the fused attention
path against the eager one on a single layer's most expensive query chunk.

Usage: nice -n 19 .venv/bin/python bench/lambda_prefill_speed.py [--lengths 8k,12k] [--repeats 1]
       [--layer-repeats 2]
Writes bench/results/lambda_prefill_speed.json (or --out). Prefills alternate method by method at each length
(pi, lambda, pi, lambda …) in one process, so a shared machine's load falls on both alike and the ratio is what
to read; the single-layer part alternates fused and eager the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
METHODS = ("pi(factor=2)", "lambda")


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def prefill_seconds(model, method, ids: torch.Tensor) -> float:
    cache = method.new_cache(model)
    started = time.perf_counter()
    method.prefill(model, ids, cache)
    return time.perf_counter() - started


def layer_seconds(model, length: int, repeats: int) -> dict[str, float]:
    """One layer's attention for the last 1,024-query chunk of a ``length``-token prefill under the default
    geometry (4 sinks, window 8,191, cap 8,192): the chunk that scores the most keys."""
    from longscope.methods.base import ContextState
    from longscope.methods.kv.lambda_shaped import Geometry, _Run, rotary_module, trained_window

    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    dim = config.hidden_size // heads
    trained = trained_window(model)
    geometry = Geometry(sinks=4, window=trained - 1, cap=trained, chunk=1024)
    run = _Run(
        ContextState(cache=None, context_tokens=length, extra={"geometry": geometry}), rotary_module(model)
    )
    steps = 1024
    held = torch.cat(
        [torch.arange(4), torch.arange(max(4, length - steps - geometry.window), length - steps)]
    )
    new = torch.arange(length - steps, length)
    key_positions = torch.cat([held, new])
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(1, heads, steps, dim, generator=generator)
    key = torch.randn(1, kv_heads, key_positions.numel(), dim, generator=generator)
    value = torch.randn(1, kv_heads, key_positions.numel(), dim, generator=generator)
    times: dict[str, list[float]] = {"fused": [], "eager": []}
    outputs = {}
    for _ in range(repeats):
        for name, attend in (("fused", run.attend_fused), ("eager", run.attend_eager)):
            started = time.perf_counter()
            outputs[name] = attend(query, key, value, new, key_positions, dim**-0.5)
            times[name].append(time.perf_counter() - started)
    return {
        "fused_s": round(min(times["fused"]), 3),
        "eager_s": round(min(times["eager"]), 3),
        "eager_over_fused": round(min(times["eager"]) / min(times["fused"]), 2),
        "max_abs_difference": float((outputs["fused"] - outputs["eager"]).abs().max()),
    }


def main() -> None:
    from longscope.backends import resolve
    from longscope.methods import make_method
    from longscope.spec import parse_lengths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="8k,12k")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--layer-repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "lambda_prefill_speed.json")
    args = parser.parse_args()

    backend = resolve("smollm2")
    model = backend.model
    vocab = model.config.vocab_size
    result: dict = {
        "bench": "lambda_prefill_speed",
        "model": "smollm2",
        "machine": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "note": "shared 2-core machine, under nice -n 19 beside other sessions: ratios only",
        "load_before": _load(),
        "prefill": {},
        "layer_chunk": {},
    }
    for length in parse_lengths(args.lengths):
        ids = torch.randint(10, vocab, (1, length), generator=torch.Generator().manual_seed(length))
        times: dict[str, list[float]] = {spec: [] for spec in METHODS}
        for _ in range(args.repeats):
            for spec in METHODS:
                with torch.no_grad():
                    times[spec].append(prefill_seconds(model, make_method(spec), ids))
                print(length, spec, round(times[spec][-1], 1), "s", flush=True)
        pi, lam = (statistics.median(times[spec]) for spec in METHODS)
        result["prefill"][str(length)] = {
            **{spec: [round(t, 1) for t in times[spec]] for spec in METHODS},
            "lambda_over_pi": round(lam / pi, 2),
        }
        result["layer_chunk"][str(length)] = layer_seconds(model, length, args.layer_repeats)
        print(length, result["prefill"][str(length)], result["layer_chunk"][str(length)], flush=True)
        result["load_after"] = _load()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

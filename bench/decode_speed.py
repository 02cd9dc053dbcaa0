"""Decode speed of the in-process backend on the bundled model: the model's forward against the decode step.

Usage: .venv/bin/python bench/decode_speed.py [--tokens 32] [--repeats 3] [--threads N] [--contexts 1024,4096]
       [--precision fp32|bf16] [--profile]
Writes bench/results/decode_speed.json (decode_speed_bf16.json for bf16, or ``--out``) and prints, per context,
tokens per second of both loops and their ratio to the bandwidth bound. Each context is prefilled once; every
run decodes from a copy of that cache, the loops alternating, best of ``--repeats``, and all must pick the same
greedy tokens (checked).

- ``forward``: one ``model(...)`` call per token over the reserved cache (the loop before the decode step).
- ``step``: ``DecodeStep`` (backends/fast_decode.py), what ``HFBackend.generate`` now runs on a CPU: in fp32
  the C step (backends/decode_kernel.c) where a compiler built it, else torch's step (its attention products on
  one thread, the rest on ``--threads``).
- ``step_torch`` (where the C step runs): torch's step beside it, for the ratio between the two in one run.
- ``step_parallel_attention`` (with more than one thread): the same step with the attention products on every
  thread too, to tell whether one-thread attention (chosen on a loaded machine) still pays on a quiet one.

On a GPU (where the backend decodes with the model's forward; the step is the CPU's) the loops are ``forward``
and ``graph``: one token's forward over a static cache captured once as a CUDA graph and replayed, the next token
fed on the device, to tell the launch overhead from the kernels' own time. It writes decode_speed_cuda_bf16.json.

The bound is the memory-bandwidth limit: the bytes one token must read (every weight once, plus the KV cache
held at that context) over the machine's bandwidth (``Bandwidth``: the larger of a pure read and a copy over
buffers the size of the weights). On the shared development machine that bandwidth swings between about 33 and
65 GB/s within minutes, so a best rate over a best bandwidth can pair two different moments. Each run is
therefore bracketed by bandwidth samples, and its ratio is its rate over the bound from the larger of the two:
``ratio_to_bound_*`` is the median of those ratios over the repeats, ``ratio_to_bound_step_at_fastest_memory``
the ratio of the run that saw the fastest memory (where a decode has the least slack), and
``ratio_to_bound_step_best_over_best`` the best rate over the best bound of the whole context (the figure
earlier runs of this bench gave). ``runs_step`` lists each run's rate and bound.
``--profile`` prints, per context, torch's profile of the step by operator (``mm``: the weight products and
the output head; ``bmm``: attention; the rest: norms, rotary, cache writes and Python between them).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from longscope.backends import fast_decode, smollm2
from longscope.backends.fast_decode import DecodeStep
from longscope.backends.hf import reserve_cache

HERE = Path(__file__).resolve().parent


def sync(device: torch.device) -> None:
    """Wait for the accelerator, so a timer read after it counts the work queued before it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bandwidth:
    """The memory bandwidth at this moment, over buffers the size of the weights made once: (read, copy) in
    bytes per second, each the best of a few passes. Read: summing the buffer on every thread (a pure read, as
    decoding is). Copy: read + write counted (a copy also reads the target's lines before writing them, so 2x
    undercounts its traffic). The bound takes the larger of the two; the best of each seen is kept."""

    def __init__(self, nbytes: int, device: torch.device) -> None:
        self.device = device
        self.source = torch.ones(nbytes // 4, device=device)
        self.target = torch.empty_like(self.source)
        self.repeats = 3 if device.type == "cpu" else 20  # a GPU's pass is that short
        self.best_read = self.best_copy = 0.0

    def _best_seconds(self, work) -> float:
        best = float("inf")
        for _ in range(self.repeats):
            sync(self.device)
            started = time.perf_counter()
            work()
            sync(self.device)
            best = min(best, time.perf_counter() - started)
        return best

    def sample(self) -> float:
        """max(read, copy) now, in bytes per second."""
        nbytes = self.source.numel() * 4
        read = nbytes / self._best_seconds(self.source.sum)
        copied = 2 * nbytes / self._best_seconds(lambda: self.target.copy_(self.source))
        self.best_read, self.best_copy = max(self.best_read, read), max(self.best_copy, copied)
        return max(read, copied)


@torch.inference_mode()
def decode(backend, prefilled, context: int, tokens: int, loop: str) -> tuple[float, list[int]]:
    """Tokens per second of ``tokens`` greedy steps from a copy of the prefilled cache, and the tokens."""
    if loop == "graph":
        return decode_graph(backend.model, prefilled, context, tokens)
    cache, token = copy.deepcopy(prefilled[0]), prefilled[1]
    model, generated, device = backend.model, [], backend.device
    step = backend.torch_step if loop == "step_torch" else backend.decode_step
    # The room for the answer is made once per answer, not per token: outside the timer (a copy of the whole
    # cache, which on the loaded machine took 0.07-1.2 s at 1k in parallel copies that stalled).
    reserve_cache(cache, tokens)
    sync(device)
    started = time.perf_counter()
    if loop.startswith("step"):
        step.attention_threads = 0 if loop == "step_parallel_attention" else 1
        cos, sin = step.positions(context, tokens)
        try:
            for i in range(tokens):
                token = int(step.step(token, cache, cos[i], sin[i]).argmax())
                generated.append(token)
        finally:
            step.attention_threads = 1
    else:
        for _ in range(tokens):
            fed = torch.tensor([[token]], device=device)
            out = model(input_ids=fed, past_key_values=cache, use_cache=True)
            token = int(out.logits[0, -1].argmax())
            generated.append(token)
    sync(device)
    return tokens / (time.perf_counter() - started), generated


@torch.inference_mode()
def decode_graph(model, prefilled, context: int, tokens: int) -> tuple[float, list[int]]:
    """The GPU's launch-free figure: one token's forward over a static cache captured as a CUDA graph and
    replayed, the next token fed on the device (no host round trip per token). Bench only: the backend's GPU
    loop is the ``forward`` one; this says how much of its gap to the bound is kernel launches."""
    from transformers import StaticCache

    ids, device = prefilled[2], prefilled[2].device
    cache = StaticCache(config=model.config, max_cache_len=context + tokens + 1)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
                cache_position=torch.arange(context, device=device))  # fmt: skip
    fed = out.logits[0, -1].argmax().view(1, 1).clone()
    position = torch.tensor([context], device=device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):  # warm-up off the capturing stream; rewrites the same slot it will write
        for _ in range(2):
            model(input_ids=fed, past_key_values=cache, cache_position=position, use_cache=True)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chosen = model(input_ids=fed, past_key_values=cache, cache_position=position, use_cache=True)
        chosen = chosen.logits[0, -1].argmax()
    generated = torch.empty(tokens, dtype=torch.long, device=device)
    sync(device)
    started = time.perf_counter()
    for i in range(tokens):
        graph.replay()
        generated[i] = chosen
        fed.copy_(chosen.view(1, 1))
        position.add_(1)
    sync(device)
    return tokens / (time.perf_counter() - started), generated.tolist()


def profile_step(backend, prefilled, context: int, tokens: int) -> None:
    """Print where the step's time goes at ``context``, by operator, over ``tokens`` steps."""
    cache, token, step = copy.deepcopy(prefilled[0]), prefilled[1], backend.decode_step
    reserve_cache(cache, tokens)  # a copy per answer, not per token: kept out of the profile
    cos, sin = step.positions(context, tokens)
    with torch.inference_mode(), torch.profiler.profile() as profile:
        for i in range(tokens):
            token = int(step.step(token, cache, cos[i], sin[i]).argmax())
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--contexts", default="1024,4096")
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="the weights' precision"
    )
    parser.add_argument("--profile", action="store_true", help="print the step's profile by operator")
    parser.add_argument(
        "--out", type=Path, help="default: results/decode_speed.json, decode_speed_bf16.json for bf16"
    )
    args = parser.parse_args()
    suffix = "" if args.precision == "fp32" else f"_{args.precision}"
    args.out = args.out or HERE / "results" / f"decode_speed{suffix}.json"
    torch.set_num_threads(args.threads)
    backend = smollm2.load(args.precision)
    model, device = backend.model, backend.device
    # Where the C step built, torch's step beside it in the same run: it re-lays the weights for itself (the
    # C step holds the originals), so the process holds the weights twice while it measures.
    backend.torch_step = None
    kernel = backend.decode_step is not None and backend.decode_step.kernel is not None
    if kernel:
        original, fast_decode.library = fast_decode.library, lambda: None
        try:
            backend.torch_step = DecodeStep(model)
        finally:
            fast_decode.library = original
    on_gpu = device.type == "cuda"
    if on_gpu and args.out == HERE / "results" / f"decode_speed{suffix}.json":
        args.out = HERE / "results" / f"decode_speed_cuda{suffix}.json"
    # On a GPU the backend decodes with the model's forward (the step is the CPU's); the graph loop beside it.
    assert on_gpu or backend.decode_step is not None, "the bundled model should get the decode step"
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    memory = Bandwidth(weights, device)
    if on_gpu:
        loops: tuple[str, ...] = ("forward", "graph")
    elif kernel:
        loops = ("forward", "step", "step_torch")
    else:
        loops = ("forward", "step") + (("step_parallel_attention",) if args.threads > 1 else ())
    fast = "graph" if on_gpu else "step"
    rows = {}
    for context in (int(c) for c in args.contexts.split(",")):
        ids = torch.randint(100, 40000, (1, context), generator=torch.Generator().manual_seed(context))
        ids = ids.to(device)
        with torch.inference_mode():
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        prefilled = (out.past_key_values, int(out.logits[0, -1].argmax()), ids)
        kv = sum(
            layer.keys.numel() * layer.keys.element_size()
            + layer.values.numel() * layer.values.element_size()
            for layer in prefilled[0].layers
        )
        # The cache grows by one position a step; the middle of the run is its average size.
        nbytes = weights + kv * (context + args.tokens / 2) / context
        runs: dict[str, list[tuple[float, float]]] = {loop: [] for loop in loops}  # (tok/s, bound then)
        outputs: dict[str, list[int]] = {}
        failed: dict[str, str] = {}
        before = memory.sample()
        for _ in range(args.repeats):
            for loop in (loop for loop in loops if loop not in failed):
                try:
                    rate, generated = decode(backend, prefilled, context, args.tokens, loop)
                except Exception as exc:  # the graph loop is an experiment: its failure is a finding
                    if loop != "graph":
                        raise
                    failed[loop] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    continue
                # The bandwidth swings by half within minutes on a shared machine: each run's bound is the
                # larger of the samples taken just before and just after it, so rate and bound share a moment.
                after = memory.sample()
                runs[loop].append((rate, max(before, after) / nbytes))
                before = after
                outputs.setdefault(loop, generated)
        best = {loop: max((rate for rate, _ in done), default=0.0) for loop, done in runs.items()}
        bound = max(memory.best_read, memory.best_copy) / nbytes
        paired = {
            loop: statistics.median([r / m for r, m in done]) if done else 0.0 for loop, done in runs.items()
        }
        # (0, 1): a ratio of 0 where the loop failed every run (the GPU's graph loop may), as the others give.
        fastest_memory = max(runs[fast], key=lambda run: run[1], default=(0.0, 1.0))
        rows[str(context)] = {
            "tok_s_forward": round(best["forward"], 2),
            f"tok_s_{fast}": round(best[fast], 2),
            "speedup": round(best[fast] / best["forward"], 2),
            "bound_tok_s": round(bound, 1),
            "ratio_to_bound_forward": round(paired["forward"], 3),
            f"ratio_to_bound_{fast}": round(paired[fast], 3),
            f"ratio_to_bound_{fast}_at_fastest_memory": round(fastest_memory[0] / fastest_memory[1], 3),
            f"ratio_to_bound_{fast}_best_over_best": round(best[fast] / bound, 3),
            f"runs_{fast}": [[round(rate, 2), round(moment, 1)] for rate, moment in runs[fast]],
            "kv_bytes_at_context": kv,
            "identical_tokens": all(outputs[loop] == outputs["forward"] for loop in outputs),
            **({"failed": failed} if failed else {}),
        }
        if "step_torch" in best:
            rows[str(context)]["tok_s_step_torch"] = round(best["step_torch"], 2)
            rows[str(context)]["ratio_to_bound_step_torch"] = round(paired["step_torch"], 3)
        if "step_parallel_attention" in best:
            rows[str(context)]["tok_s_step_parallel_attention"] = round(best["step_parallel_attention"], 2)
        row = rows[str(context)]
        print(
            f"{context:>6} tokens: {fast} {row[f'tok_s_{fast}']} tok/s; {row[f'ratio_to_bound_{fast}']:.2f} of the bound "
            f"at each run's moment (median of {len(runs[fast])}; {row[f'ratio_to_bound_{fast}_at_fastest_memory']:.2f} "
            f"at the fastest memory seen; best rate over best bound {row['bound_tok_s']}: "
            f"{row[f'ratio_to_bound_{fast}_best_over_best']:.2f}). Forward {row['tok_s_forward']} = "
            f"{row['ratio_to_bound_forward']:.2f}; {row['speedup']}x; torch step {row.get('tok_s_step_torch', '-')}; "
            f"parallel attention {row.get('tok_s_step_parallel_attention', '-')}; "
            f"identical tokens {row['identical_tokens']}",
            flush=True,
        )
        if args.profile and not on_gpu:
            profile_step(backend, prefilled, context, args.tokens)
    result = {
        "model": backend.model_name,
        "precision": backend.precision,
        "weight_bytes": weights,
        "read_bandwidth_gb_s": round(memory.best_read / 1e9, 1),
        "copy_bandwidth_gb_s": round(memory.best_copy / 1e9, 1),
        "tokens": args.tokens,
        "repeats": args.repeats,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "machine": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "step": "forward (GPU)" if on_gpu else ("C" if kernel else "torch"),
        "torch": torch.__version__,
        "contexts": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

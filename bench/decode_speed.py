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
as it stands once the token's entry is in) over the memory's bandwidth. On the shared development machine that
bandwidth swings between about 33 and 65 GB/s within seconds, so a rate and a bandwidth measured apart can pair
two different moments. Every decoded token is therefore followed by one read pass over a buffer the size of the
weights (``Bandwidth``; outside the token's timer), and each token's ratio is its bytes over its seconds against
the faster of the two passes around it. ``ratio_to_bound_*`` is the median over all tokens of all repeats;
``ratio_to_bound_step_fastest_quarter`` the median over the quarter of the step's tokens that had the fastest
memory around them (where a decode has the least slack), with that memory's pace; ``runs_step`` gives per run
its rate, median bandwidth and median ratio. Rates (``tok_s_*``) are the best run's tokens over the sum of its
tokens' seconds. The GPU's graph loop is timed as one span (a pass between replays would add a round trip).
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
from dataclasses import dataclass, field
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
    """The memory's pace at this moment: one read pass (summing, on every thread, a buffer the size of the
    weights, made once) timed between every two decoded tokens. Decoding is a pure read, and on the development
    machine torch's sum read as fast as a hand-written AVX-512 loop (34.4 against 33.5 GB/s, alternating)."""

    def __init__(self, nbytes: int, device: torch.device) -> None:
        self.device = device
        self.source = torch.ones(nbytes // 4, device=device)
        self.nbytes = self.source.numel() * 4
        self.fastest = float("inf")

    def read_pass(self) -> float:
        """Seconds for one read of the buffer."""
        sync(self.device)
        started = time.perf_counter()
        self.source.sum()
        sync(self.device)
        seconds = time.perf_counter() - started
        self.fastest = min(self.fastest, seconds)
        return seconds

    @property
    def best(self) -> float:
        """The fastest read seen, in bytes per second."""
        return self.nbytes / self.fastest


@dataclass
class Decoded:
    """One run of a loop: the seconds of each timed span (one token, or every token for the graph loop), the
    read passes around the spans (one before each and one after the last), and the tokens it picked."""

    steps: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)

    def rate(self) -> float:
        return len(self.generated) / sum(self.steps)

    def ratios(self, token_bytes: list[float], read_bytes: int) -> list[tuple[float, float]]:
        """(ratio to the bound, bandwidth) per span: the bytes its tokens read over its seconds, against the
        faster of the two read passes around it (the memory's pace at that moment, counted generously)."""
        per_span = len(self.generated) // len(self.steps)
        paired = []
        for i, seconds in enumerate(self.steps):
            bandwidth = read_bytes / min(self.reads[i], self.reads[i + 1])
            moved = sum(token_bytes[i * per_span : (i + 1) * per_span])
            paired.append((moved / seconds / bandwidth, bandwidth))
        return paired


@torch.inference_mode()
def decode(backend, prefilled, context: int, tokens: int, loop: str, memory: Bandwidth) -> Decoded:
    """``tokens`` greedy steps from a copy of the prefilled cache, each followed by one read pass over
    ``memory``'s buffer (outside the step's timer), so every token has a bandwidth from its own moment."""
    if loop == "graph":
        return decode_graph(backend.model, prefilled, context, tokens, memory)
    cache, token = copy.deepcopy(prefilled[0]), prefilled[1]
    model, device = backend.model, backend.device
    step = backend.torch_step if loop == "step_torch" else backend.decode_step
    # The room for the answer is made once per answer, not per token: outside the timer (a copy of the whole
    # cache, which on the loaded machine took 0.07-1.2 s at 1k in parallel copies that stalled).
    reserve_cache(cache, tokens)
    done = Decoded(reads=[memory.read_pass()])
    if loop.startswith("step"):
        step.attention_threads = 0 if loop == "step_parallel_attention" else 1
        cos, sin = step.positions(context, tokens)
    try:
        for i in range(tokens):
            sync(device)
            started = time.perf_counter()
            if loop.startswith("step"):
                token = int(step.step(token, cache, cos[i], sin[i]).argmax())
            else:
                fed = torch.tensor([[token]], device=device)
                out = model(input_ids=fed, past_key_values=cache, use_cache=True)
                token = int(out.logits[0, -1].argmax())
            done.steps.append(time.perf_counter() - started)
            done.generated.append(token)
            done.reads.append(memory.read_pass())
    finally:
        if loop.startswith("step"):
            step.attention_threads = 1
    return done


@torch.inference_mode()
def decode_graph(model, prefilled, context: int, tokens: int, memory: Bandwidth) -> Decoded:
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
    # One span for all tokens: a read pass between replays would put a host round trip back in the loop.
    before = memory.read_pass()
    started = time.perf_counter()
    for i in range(tokens):
        graph.replay()
        generated[i] = chosen
        fed.copy_(chosen.view(1, 1))
        position.add_(1)
    sync(device)
    seconds = time.perf_counter() - started
    return Decoded(steps=[seconds], reads=[before, memory.read_pass()], generated=generated.tolist())


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
        # The bytes each token reads: every weight, and the cache as it stands once the token's entry is in.
        token_bytes = [weights + kv * (context + i + 1) / context for i in range(args.tokens)]
        runs: dict[str, list[Decoded]] = {loop: [] for loop in loops}
        failed: dict[str, str] = {}
        for _ in range(args.repeats):
            for loop in (loop for loop in loops if loop not in failed):
                try:
                    runs[loop].append(decode(backend, prefilled, context, args.tokens, loop, memory))
                except Exception as exc:  # the graph loop is an experiment: its failure is a finding
                    if loop != "graph":
                        raise
                    failed[loop] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        outputs = {loop: done[0].generated for loop, done in runs.items() if done}
        best = {loop: max((run.rate() for run in done), default=0.0) for loop, done in runs.items()}
        # The bandwidth swings by half within seconds on a shared machine, so a token's bound is taken from the
        # read passes on either side of it, and a loop's ratio is the median over all its tokens.
        paired = {
            loop: [pair for run in done for pair in run.ratios(token_bytes, memory.nbytes)]
            for loop, done in runs.items()
        }
        ratio = {
            loop: statistics.median(r for r, _ in pairs) if pairs else 0.0 for loop, pairs in paired.items()
        }
        # Where the memory is fast the step has the least slack: the quarter of its tokens with the fastest
        # memory around them, on their own.
        fastest = sorted(paired[fast], key=lambda pair: pair[1], reverse=True)[
            : max(1, len(paired[fast]) // 4)
        ]
        bandwidths = [bandwidth for _, bandwidth in paired[fast]]
        mean_bytes = statistics.fmean(token_bytes)
        rows[str(context)] = {
            "tok_s_forward": round(best["forward"], 2),
            f"tok_s_{fast}": round(best[fast], 2),
            "speedup": round(best[fast] / best["forward"], 2),
            "bound_tok_s": round(memory.best / mean_bytes, 1),
            "ratio_to_bound_forward": round(ratio["forward"], 3),
            f"ratio_to_bound_{fast}": round(ratio[fast], 3),
            f"ratio_to_bound_{fast}_fastest_quarter": round(statistics.median(r for r, _ in fastest), 3)
            if paired[fast]
            else 0.0,
            "bandwidth_gb_s_fastest_quarter": round(statistics.median(b for _, b in fastest) / 1e9, 1)
            if paired[fast]
            else 0.0,
            "bandwidth_gb_s_median": round(statistics.median(bandwidths) / 1e9, 1) if bandwidths else 0.0,
            # Per run: tok/s, the median bandwidth around its tokens (GB/s), its median ratio.
            f"runs_{fast}": [
                [
                    round(run.rate(), 2),
                    round(statistics.median(b for _, b in run.ratios(token_bytes, memory.nbytes)) / 1e9, 1),
                    round(statistics.median(r for r, _ in run.ratios(token_bytes, memory.nbytes)), 3),
                ]
                for run in runs[fast]
            ],
            "kv_bytes_at_context": kv,
            "identical_tokens": all(
                run.generated == outputs["forward"] for done in runs.values() for run in done
            ),
            **({"failed": failed} if failed else {}),
        }
        if "step_torch" in best:
            rows[str(context)]["tok_s_step_torch"] = round(best["step_torch"], 2)
            rows[str(context)]["ratio_to_bound_step_torch"] = round(ratio["step_torch"], 3)
        if "step_parallel_attention" in best:
            rows[str(context)]["tok_s_step_parallel_attention"] = round(best["step_parallel_attention"], 2)
        row = rows[str(context)]
        print(
            f"{context:>6} tokens: {fast} {row[f'tok_s_{fast}']} tok/s; {row[f'ratio_to_bound_{fast}']:.2f} of the "
            f"bound, token by token (memory {row['bandwidth_gb_s_median']} GB/s median); "
            f"{row[f'ratio_to_bound_{fast}_fastest_quarter']:.2f} over the quarter of tokens with the fastest memory "
            f"({row['bandwidth_gb_s_fastest_quarter']} GB/s). Forward {row['tok_s_forward']} = "
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
        "read_bandwidth_gb_s": round(memory.best / 1e9, 1),
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

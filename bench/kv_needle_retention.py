"""How much of the needle each kvpress selection keeps at half the KV bytes, on 4k NIAH of the ruler-like suite.

Usage: .venv/bin/python bench/kv_needle_retention.py [--cases niah:2,niah_multikey:0] [--ratio 0.5] [--length 4k]
Writes bench/results/kv_needle_retention.json.

Why this exists: finch:0.5 (query-aware) answered "37877." where the gold is 3787794. SmolLM2's tokenizer writes a
number one digit per token, and a press that keeps the top entries of each KV head on its own keeps the first
digit (which the question attends to) and drops some of the others in most heads, so the copied number breaks
off. This bench measures that directly, for many presses from one prefill per sample: a press changes only the
cache, never the prefill's own hidden states, so every press's selection is computed from the same per-layer
inputs (kvpress's own ``score`` functions; the head-wise, AdaKV and ChunkKV selections as kvpress makes them).

For each press it reports, over layers × KV heads, the share in which *every* token of the needle's value is kept
(``whole``) and the mean share of its tokens kept (``tokens``). The prefill is the query-aware one: the context
and the question, as kvpress's evaluation with ``--query_aware`` and longscope's ``query_aware=true`` run it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CASES = "niah:2,niah:1,niah_multikey:0,niah_multikey:4"


def presses(question_tokens: int) -> dict:
    """The selections compared: (how entries are chosen, the scorer press)."""
    import kvpress as kp

    finch = kp.FinchPress()
    finch.window_size = question_tokens  # its window is the question (longscope sets it the same way)
    return {
        "finch (window = question)": ("per_head", finch),
        "snapkv (window 64, kernel 5)": ("per_head", kp.SnapKVPress(window_size=64)),
        "snapkv (window = question, kernel 5)": ("per_head", kp.SnapKVPress(window_size=question_tokens)),
        "snapkv (window = question, kernel 15)": (
            "per_head",
            kp.SnapKVPress(window_size=question_tokens, kernel_size=15),
        ),
        "adakv(snapkv)": ("adakv", kp.SnapKVPress(window_size=64)),
        "chunkkv(snapkv), chunks of 20": ("chunk:20", kp.SnapKVPress(window_size=64)),
        "chunkkv(snapkv, window = question)": ("chunk:20", kp.SnapKVPress(window_size=question_tokens)),
        "chunkkv(snapkv), chunks of 10": ("chunk:10", kp.SnapKVPress(window_size=64)),
        "chunkkv(snapkv), chunks of 40": ("chunk:40", kp.SnapKVPress(window_size=64)),
        "chunkkv(snapkv), chunks of 64": ("chunk:64", kp.SnapKVPress(window_size=64)),
        "chunkkv(snapkv, window = question), chunks of 40": (
            "chunk:40",
            kp.SnapKVPress(window_size=question_tokens),
        ),
        "chunkkv(snapkv, kernel 15), chunks of 20": (
            "chunk:20",
            kp.SnapKVPress(window_size=64, kernel_size=15),
        ),
        "chunkkv(expected_attention), chunks of 20": ("chunk:20", kp.ExpectedAttentionPress()),
        "adakv(expected_attention, eps 0.01)": ("adakv", kp.ExpectedAttentionPress(epsilon=0.01)),
        "keydiff": ("per_head", kp.KeyDiffPress()),
    }


def kept_mask(kind: str, scores, ratio: float):
    """Which (head, position) entries a selection keeps, from the scorer's scores (1 × heads × positions)."""
    import torch
    from kvpress.utils import compute_n_kept

    heads, length = scores.shape[1], scores.shape[2]
    n_kept = compute_n_kept(length, ratio)
    keep = torch.zeros(heads, length, dtype=torch.bool)
    if kind == "per_head":
        keep.scatter_(1, scores[0].topk(n_kept, dim=-1).indices, True)
    elif kind == "adakv":  # kvpress's AdaKV: a safeguard per head (alpha 0.20), then the best over all heads
        safe = max(1, int(n_kept * 0.20))
        lifted = scores[0].clone()
        lifted.scatter_(1, lifted.topk(safe, dim=-1).indices, float("inf"))
        keep.view(-1)[lifted.reshape(-1).topk(heads * n_kept).indices] = True
    else:  # kvpress's ChunkKV ("chunk:SIZE"): chunks scored by their mean over heads, the same chunks in every head
        size = int(kind.split(":")[1])
        summed = scores[0].sum(0)
        starts = list(range(0, length, size))
        chunk_scores = torch.stack([summed[s : s + size].mean() for s in starts])
        full_chunks = length // size
        n_chunks = max(1, int((full_chunks + (length % size > 0)) * (1 - ratio)))
        for chunk in chunk_scores.topk(n_chunks).indices.tolist():
            keep[:, starts[chunk] : starts[chunk] + size] = True
    return keep


def measure(case: str, ratio: float, length: int, backend) -> dict:
    import torch
    from transformers import DynamicCache

    from longscope.config import RunConfig
    from longscope.plan import plan, prepare
    from longscope.runner import validate

    task, seed = case.rsplit(":", 1)
    config = RunConfig(
        model="smollm2",
        suite="ruler-like",
        tasks=[task],
        lengths=[length],
        depths=[0.5],
        samples=1,
        seed=int(seed),
        methods=["full"],
    )
    tasks, methods = validate(config)
    (work,) = prepare(plan(tasks, config, methods), backend, config, set())
    request = work.item.request(work.sample, 0)
    prompt, ids, _ = backend.prepare(request)
    question = [m["content"] for m in request.messages if m["role"] == "user"][-1]
    prefill = len(backend.encode(prompt[: prompt.find(question) + len(question)]))
    question_tokens = prefill - len(
        backend.encode(prompt[: prompt.find(request.context) + len(request.context)])
    )
    gold = str(work.sample.turns[0].answers[0])
    at = prompt.find(gold)
    needle = list(range(len(backend.encode(prompt[:at])), len(backend.encode(prompt[: at + len(gold)]))))

    model = backend.model
    for layer in model.model.layers:  # what kvpress's press context attaches before scoring
        layer.self_attn.rotary_emb = model.model.rotary_emb
    compared = presses(question_tokens)
    tallies: dict[str, list[tuple[float, float]]] = {name: [] for name in compared}

    def after_attention(module, args, kwargs, output):
        cache_layer = kwargs["past_key_values"].layers[module.layer_idx]
        for name, (kind, press) in compared.items():
            press.compression_ratio = ratio
            scores = press.score(
                module, kwargs["hidden_states"], cache_layer.keys, cache_layer.values, None, kwargs
            ).float()
            on_needle = kept_mask(kind, scores, ratio)[:, needle]
            tallies[name].append(
                (on_needle.all(dim=1).float().mean().item(), on_needle.float().mean().item())
            )
        return output

    hooks = [
        layer.self_attn.register_forward_hook(after_attention, with_kwargs=True)
        for layer in model.model.layers
    ]
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            model.model(
                input_ids=torch.tensor([ids[:prefill]]), past_key_values=DynamicCache(), use_cache=True
            )
    finally:
        for hook in hooks:
            hook.remove()
    return {
        "case": case,
        "prefill_tokens": prefill,
        "question_tokens": question_tokens,
        "needle_tokens": [needle[0], needle[-1]],
        "seconds": round(time.perf_counter() - started, 1),
        "kept": {
            name: {
                "whole": round(sum(w for w, _ in rows) / len(rows), 3),
                "tokens": round(sum(t for _, t in rows) / len(rows), 3),
            }
            for name, rows in tallies.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help="TASK:SEED,... of the ruler-like suite at 4k")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--length", default="4k")
    args = parser.parse_args()

    from longscope.backends import resolve
    from longscope.spec import parse_lengths

    backend = resolve("smollm2")
    (length,) = parse_lengths(args.length)
    out = HERE / "results" / f"kv_needle_retention{'' if length == 4096 else f'_{length}'}.json"
    (HERE / "results").mkdir(exist_ok=True)
    cases: list[dict] = []
    for case in args.cases.split(","):
        # Written after every case: on a loaded machine a 4k prefill can take minutes, and a stop keeps the rest.
        cases.append(measure(case, args.ratio, length, backend))
        print(json.dumps({"case": case, "kept": cases[-1]["kept"]}, indent=2), flush=True)
        names = list(cases[0]["kept"])
        mean = {
            name: {
                key: round(sum(c["kept"][name][key] for c in cases) / len(cases), 3)
                for key in ("whole", "tokens")
            }
            for name in names
        }
        result = {"ratio": args.ratio, "length": length, "cases": cases, "mean": mean, "shared_machine": True}
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(mean, indent=2))


if __name__ == "__main__":
    main()

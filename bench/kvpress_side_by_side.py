"""The same kvpress press through kvpress's own pipeline and through longscope's session, side by side.

Usage: .venv/bin/python bench/kvpress_side_by_side.py [--methods snapkv:0.5,adakv:0.5] [--samples niah@2k,...]
       [--repeats 2]
Writes bench/results/kvpress_side_by_side.json. On the bundled SmolLM2 model and a few quick-suite samples, each
press runs through ``transformers.pipeline("kv-press-text-generation")`` (its context and question split where
longscope's session splits the prompt: at the end of the sample's context) and through ``backend.session``; the
figures are how many greedy answers are identical, and the wall time of each side with the ratio ours/kvpress.
The two sides alternate which goes first from sample to sample, after one untimed warm-up request each, so that
both see the same machine state; CPU time (process time) is saved beside wall time, as it is steadier on a
shared machine. Each time is the best of ``--repeats`` runs (on a shared machine the slower runs measure the
neighbours).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SAMPLES = "niah@2k,confusing_facts@2k,db_count@2k,common_words@3k"


def kvpress_press(spec: str, context_tokens: int):
    """kvpress's own press for a method spec, built natively (not through longscope) with the method's ratio."""
    import kvpress

    from longscope.methods import make_method

    method = make_method(spec)
    ratio = 1 - method.kept(context_tokens) / context_tokens if method.budget is not None else method.ratio
    if method.name == "snapkv":
        return kvpress.SnapKVPress(compression_ratio=ratio)
    if method.name == "adakv":
        return kvpress.AdaKVPress(press=kvpress.SnapKVPress(compression_ratio=ratio))
    if method.name == "expected-attention":
        return kvpress.ExpectedAttentionPress(compression_ratio=ratio)
    if method.name == "knorm":
        return kvpress.KnormPress(compression_ratio=ratio)
    raise SystemExit(f"no native kvpress press written for {spec}")


def split_for_pipeline(sample) -> tuple[str, str]:
    """The user message cut at the end of the context: what kvpress's pipeline calls context and question."""
    content = sample.messages(0)[-1]["content"]
    end = content.index(sample.context) + len(sample.context)
    return content[:end], content[end:]


def warm_up(backend, pipe) -> None:
    """One short untimed request through each side, so neither pays first-call costs inside the figures."""
    import kvpress

    from longscope.core import GenerationRequest
    from longscope.methods import make_method

    context = "The meeting moved to Thursday because the hall was booked. " * 20
    request = GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\nWhen is the meeting?"}],
        max_new_tokens=4,
        context=context,
    )
    backend.session(make_method("snapkv:0.5")).ask(request)
    pipe(
        context,
        question="\nWhen is the meeting?",
        press=kvpress.SnapKVPress(compression_ratio=0.5),
        max_new_tokens=4,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="snapkv:0.5,adakv:0.5")
    parser.add_argument("--samples", default=DEFAULT_SAMPLES, help="TASK@LENGTH,... from the quick suite")
    parser.add_argument("--repeats", type=int, default=2, help="each time is the best of this many runs")
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from longscope.backends import resolve
    from longscope.methods import make_method
    from longscope.methods.kv._press_lookup import kvpress
    from longscope.spec import parse_lengths
    from longscope.tasks import cached_sample, make_task

    started = time.perf_counter()
    backend = resolve("smollm2")
    kvpress()  # registers kvpress's pipeline with transformers
    pipe = pipeline("kv-press-text-generation", model=backend.model, tokenizer=backend.tokenizer)

    samples = []
    for item in args.samples.split(","):
        name, _, length = item.partition("@")
        task = make_task(name)
        tokens = parse_lengths(length)[0]
        sample = cached_sample(task, backend, tokens, 0.5 if task.uses_depth else None, 0)
        if sample.system is not None or not sample.chat:
            raise SystemExit(f"{item}: kvpress's pipeline takes one user message with the chat template")
        samples.append((item, sample))

    warm_up(backend, pipe)
    results = []
    for spec in args.methods.split(","):
        method = make_method(spec)
        rows = []
        for index, (item, sample) in enumerate(samples):
            request = sample.request(0)
            context, question = split_for_pipeline(sample)
            answer_prefix = sample.turns[0].answer_prefix
            inputs = pipe.preprocess(
                context, questions=[question], answer_prefix=answer_prefix, max_context_length=10**9
            )
            prompt = backend.render(request.messages, request.answer_prefix, request.chat)
            ids = backend.encode(prompt)
            split = backend.session(method).split(prompt, ids, request.context)
            same_tokens = (
                inputs["context_ids"][0].tolist() == ids[:split]
                and inputs["questions_ids"][0][0].tolist() == ids[split:]
            )
            press = kvpress_press(spec, split)

            def ours(method=method, request=request):
                # A fresh session each time: a kept one would reuse the prefilled context on a repeat.
                return backend.session(method).ask(request).text

            def theirs(
                context=context,
                question=question,
                answer_prefix=answer_prefix,
                press=press,
                budget=request.max_new_tokens,
            ):
                out = pipe(
                    context,
                    question=question,
                    answer_prefix=answer_prefix,
                    press=press,
                    max_new_tokens=budget,
                )
                return out["answer"]

            timed: dict[str, tuple[str, float, float]] = {}
            order = [("ours", ours), ("kvpress", theirs)]
            for repeat in range(args.repeats):
                for side, run in order if (index + repeat) % 2 == 0 else order[::-1]:
                    wall, cpu = time.perf_counter(), time.process_time()
                    with torch.inference_mode():
                        text = run()
                    took = (text, time.perf_counter() - wall, time.process_time() - cpu)
                    best = timed.get(side, took)
                    timed[side] = (best[0], min(best[1], took[1]), min(best[2], took[2]))
            row = {
                "sample": item,
                "context_tokens": split,
                "prompt_tokens": len(ids),
                "same_tokens": same_tokens,
                "identical": timed["ours"][0].strip() == timed["kvpress"][0].strip(),
                "ours_text": timed["ours"][0],
                "kvpress_text": timed["kvpress"][0],
                "ours_s": round(timed["ours"][1], 3),
                "kvpress_s": round(timed["kvpress"][1], 3),
                "ours_cpu_s": round(timed["ours"][2], 3),
                "kvpress_cpu_s": round(timed["kvpress"][2], 3),
            }
            rows.append(row)
            print(
                f"{spec:>12} {item:<24} same tokens={row['same_tokens']!s:<5} "
                f"identical={row['identical']!s:<5} ours {row['ours_s']:6.2f}s "
                f"kvpress {row['kvpress_s']:6.2f}s  {row['ours_text'][:40]!r}",
                flush=True,
            )
        ours_s = sum(r["ours_s"] for r in rows)
        kvpress_s = sum(r["kvpress_s"] for r in rows)
        ours_cpu = sum(r["ours_cpu_s"] for r in rows)
        kvpress_cpu = sum(r["kvpress_cpu_s"] for r in rows)
        results.append(
            {
                "method": method.label(),
                "identical": sum(r["identical"] for r in rows),
                "samples": len(rows),
                "ours_s": round(ours_s, 2),
                "kvpress_s": round(kvpress_s, 2),
                "ours_over_kvpress": round(ours_s / kvpress_s, 3),
                "ours_cpu_s": round(ours_cpu, 2),
                "kvpress_cpu_s": round(kvpress_cpu, 2),
                "cpu_ours_over_kvpress": round(ours_cpu / kvpress_cpu, 3),
                "rows": rows,
            }
        )

    result = {
        "model": backend.model_name,
        "device": str(backend.device),
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "total_s": round(time.perf_counter() - started, 1),
        "methods": results,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "kvpress_side_by_side.json").write_text(json.dumps(result, indent=2) + "\n")
    for entry in results:
        print(
            f"{entry['method']}: {entry['identical']}/{entry['samples']} identical answers; "
            f"ours {entry['ours_s']:.1f}s, kvpress {entry['kvpress_s']:.1f}s, ours/kvpress "
            f"{entry['ours_over_kvpress']:.3f} (CPU time {entry['ours_cpu_s']:.1f}s / {entry['kvpress_cpu_s']:.1f}s = "
            f"{entry['cpu_ours_over_kvpress']:.3f})"
        )
    print(f"total {result['total_s']} s")


if __name__ == "__main__":
    main()

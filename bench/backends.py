"""Prefill and decode tokens/s of the bundled model on the hf and gguf backends, side by side, at 1k, 4k and 8k.

Usage: .venv/bin/python bench/backends.py [--lengths 1024,4096,8192] [--decode 64] [--repeats 2] [--threads N]
Writes bench/results/backends.json. Each length is measured on both backends one after the other (hf, then
gguf), after one short warm-up request each, so that both see the same machine state; each measurement is the
best of ``--repeats`` (on a shared machine the slower runs measure the neighbours). The prompt is an essay
haystack cut to the length in each backend's own tokenizer, followed by a request for a long summary so that
decoding runs its whole budget (the decode rate is over the tokens actually generated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTRUCTION = "Write a long, detailed summary of the text above, paragraph by paragraph."


def prompt_of(backend, length: int, decode: int) -> list[dict[str, str]]:
    """Messages whose rendered prompt is ``length - decode`` tokens in this backend's tokenizer (or just
    under, where the cut lands between two tokens that merge)."""
    from longscope.haystack import corpus

    essay = "".join(corpus("essay").sentences).strip()
    text = essay
    while backend.count_tokens(text) < length:
        text += "\n\n" + essay
    ids = backend.encode(text)
    target = length - decode

    def messages(n: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": backend.decode(ids[:n]) + "\n\n" + INSTRUCTION}]

    n = target - backend.count_tokens(backend.render(messages(0)))
    for _ in range(6):
        got = backend.count_tokens(backend.render(messages(n)))
        if got == target:
            break
        n += target - got
    return messages(n)


def measure(backend, messages, decode: int, repeats: int = 1) -> dict[str, float]:
    from longscope.core import GenerationRequest

    runs = [
        backend.generate(GenerationRequest(messages=messages, max_new_tokens=decode)) for _ in range(repeats)
    ]
    prefill_s = min(g.prefill_s for g in runs)
    decode_s = min(g.decode_s for g in runs)
    generation = runs[0]
    decoded = max(0, generation.output_tokens - 1)  # the first token comes out of the prefill
    return {
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
        "prefill_s": round(prefill_s, 3),
        "decode_s": round(decode_s, 3),
        "prefill_tok_s": round(generation.input_tokens / prefill_s, 1),
        "decode_tok_s": round(decoded / decode_s, 1) if decode_s > 0 else None,
        "all_prefill_s": [round(g.prefill_s, 3) for g in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", default="1024,4096,8192")
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: one per core)")
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]

    from longscope import bundled
    from longscope.backends import smollm2
    from longscope.backends.llamacpp import LlamaCppBackend

    load_average = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    hf = smollm2.load()
    hf_load_s = time.perf_counter() - started
    started = time.perf_counter()
    gguf = LlamaCppBackend(bundled.gguf_path(), threads=args.threads)
    gguf_load_s = time.perf_counter() - started
    backends = {"hf": hf, "gguf": gguf}

    warm = [{"role": "user", "content": "Say hello."}]
    for backend in backends.values():
        measure(backend, warm, 4)

    rows = []
    for length in lengths:
        for name, backend in backends.items():
            result = {"backend": name, "length": length, **measure(backend, prompt_of(backend, length, args.decode),
                                                                   args.decode, args.repeats)}  # fmt: skip
            rows.append(result)
            print(json.dumps(result), flush=True)

    def ratio(length: int, key: str) -> float | None:
        by = {row["backend"]: row for row in rows if row["length"] == length}
        if not by["hf"].get(key) or not by["gguf"].get(key):
            return None
        return round(by["gguf"][key] / by["hf"][key], 2)

    report = {
        "model": f"{bundled.NAME} ({bundled.GGUF_FILE})",
        "results": rows,
        "gguf_over_hf": {
            str(length): {"prefill": ratio(length, "prefill_tok_s"), "decode": ratio(length, "decode_tok_s")}
            for length in lengths
        },
        "load_s": {
            "hf (cached conversion)": round(hf_load_s, 2),
            "gguf (vocabulary; weights at first use)": round(gguf_load_s, 2),
        },
        "gguf_threads": gguf.threads,
        "torch_threads": __import__("torch").get_num_threads(),
        "decode_budget": args.decode,
        "repeats (best kept)": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_average,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = HERE / "results" / "backends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

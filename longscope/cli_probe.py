"""``longscope probe``: measurements that are not tasks; ``probe ppl`` writes the loss-by-position curves."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from longscope.core import UsageError

app = typer.Typer(add_completion=False, help="Probes of a model that are not tasks: loss by position.")
out = Console()


@app.command("ppl")
def ppl(
    model: str = typer.Option("smollm2", help="smollm2 (bundled) or hf:PATH_OR_ID: an in-process model"),
    lengths: str = typer.Option("4k,8k", help="token lengths, e.g. 8k,12k,16k"),
    methods: str = typer.Option("full", help="in-model methods, e.g. full,pi(factor=2),yarn,self-extend"),
    samples: int = typer.Option(2, help="essay windows per length"),
    bin_tokens: int = typer.Option(512, "--bin", help="positions per point of the curve"),
    out_file: str = typer.Option("probe-ppl.json", "--out", help="where to write the curves (JSON)"),
) -> None:
    """Token NLL by position over the built-in essays at each length, with and without each method."""
    from longscope.backends import resolve
    from longscope.methods import parse_methods
    from longscope.probe import probe
    from longscope.spec import parse_lengths

    if not out_file.strip():
        raise UsageError("--out is empty; give a JSON file, e.g. --out probe-ppl.json")
    parsed_lengths = parse_lengths(lengths)
    parsed_methods = parse_methods(methods)
    backend = resolve(model)
    curves = probe(backend, parsed_lengths, parsed_methods, samples=samples, bin_tokens=bin_tokens)
    target = Path(out_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": backend.model_name,
        "model_revision": backend.model_revision,
        "trained_window": backend.context_window,
        "curves": [curve.as_dict() for curve in curves],
    }
    target.write_text(json.dumps(payload, indent=1, allow_nan=True))
    for curve in curves:
        flag = " (past the trained window)" if curve.past_window else ""
        out.print(f"{curve.method:>24} {curve.length:>7}: mean NLL {curve.mean:.3f}{flag}", highlight=False)
    out.print(f"wrote {target}", highlight=False)

"""``longscope probe``: measurements that are not tasks; ``probe ppl`` writes the loss-by-position curves."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from longscope.core import UsageError
from longscope.probe import PROBE_FILE

app = typer.Typer(add_completion=False, help="Probes of a model that are not tasks: loss by position.")
out = Console()


@app.command("ppl")
def ppl(
    model: str = typer.Option(
        None,
        help="smollm2 (bundled) or hf:PATH_OR_ID: an in-process model [default: "
        "the run's model when --out is a run, else smollm2]",
    ),  # fmt: skip
    lengths: str = typer.Option(
        None,
        help="token lengths, e.g. 8k,12k,16k [default: the run's lengths when --out is a run, else 4k,8k]",
    ),  # fmt: skip
    methods: str = typer.Option(
        None,
        help="in-model methods, e.g. full,pi(factor=2),yarn,self-extend "
        "[default: full and the run's in-model methods when --out is a run, else full]",
    ),  # fmt: skip
    samples: int = typer.Option(2, help="essay windows per length"),
    bin_tokens: int = typer.Option(512, "--bin", help="positions per point of the curve"),
    out_file: str = typer.Option(
        PROBE_FILE,
        "--out",
        help=f"a JSON file, or a run directory: then {PROBE_FILE} inside it, which its "
        "report draws beside the run's scores",
    ),  # fmt: skip
) -> None:
    """Token NLL by position over the built-in essays at each length, with and without each method."""
    from longscope.backends import resolve
    from longscope.methods import KVMethod, parse_methods
    from longscope.probe import probe
    from longscope.spec import parse_lengths

    if not out_file.strip():
        raise UsageError(f"--out is empty; give a JSON file or a run directory, e.g. --out {PROBE_FILE}")
    target = Path(out_file)
    run = _run_config(target) if target.is_dir() else {}
    if target.is_dir():
        target = target / PROBE_FILE
    model = model or run.get("model") or "smollm2"
    parsed_lengths = parse_lengths(lengths or ",".join(str(n) for n in run.get("lengths", [])) or "4k,8k")
    if methods is None:
        # The run's in-model methods beside full; its prompt methods change what is sent, not how it is read.
        ran = [m for m in parse_methods(",".join(run.get("methods", ["full"]))) if isinstance(m, KVMethod)]
        parsed_methods = ran if any(m.label() == "full" for m in ran) else [*parse_methods("full"), *ran]
    else:
        parsed_methods = parse_methods(methods)
    backend = resolve(model)
    curves = probe(backend, parsed_lengths, parsed_methods, samples=samples, bin_tokens=bin_tokens)
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = getattr(backend, "tokenizer", None)
    payload = {
        "model": backend.model_name,
        "model_revision": backend.model_revision,
        "trained_window": backend.context_window,
        # Position 0 is never predicted; with a BOS it holds the BOS and every essay token is predicted.
        "bos_token": getattr(tokenizer, "bos_token", None) if any(c.bos for c in curves) else None,
        "curves": [curve.as_dict() for curve in curves],
    }
    target.write_text(json.dumps(payload, indent=1, allow_nan=True))
    for curve in curves:
        flag = " (past the trained window)" if curve.past_window else ""
        out.print(f"{curve.method:>24} {curve.length:>7}: mean NLL {curve.mean:.3f}{flag}", highlight=False)
    out.print(f"wrote {target}", highlight=False)


def _run_config(run_dir: Path) -> dict:
    """The configuration of the run in ``run_dir`` (model, lengths, methods), or nothing for a plain folder."""
    from longscope.store import DB_NAME, RunStore

    if not (run_dir / DB_NAME).is_file():
        return {}
    store = RunStore.open(run_dir, create=False)
    try:
        config = store.get_meta("config")
    finally:
        store.close()
    return config if isinstance(config, dict) else {}

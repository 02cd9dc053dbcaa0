"""Reading past the trained window for free: NIAH score by length under each position-extension method, paired
against Λ-attention, beside the loss-by-position curves of the same methods (bundled model, 8k window).

Usage: .venv/bin/python bench/position_extension.py [--phase tasks|probe|all|summarize] [--lengths 8k,12k,16k]
       [--samples 2] [--probe-samples 1] [--model smollm2] [--out FILE]
Writes bench/results/position_extension.json (or --out): per method and length the mean score and n, every
method's paired difference against ``lambda`` per length, and the probe's NLL-by-position curves with and
without each method. Each phase merges its part into the file, so a run cut short keeps what finished, and the
file says which parts are partial. The run directory is kept beside it: a rerun with more samples resumes and
adds contexts. Questions share each context (multi-request): one prefill per method, context and length gives
``questions`` paired observations. The probe runs at the longest length only: every method here reads causally
and independently of the input's length, so the curve at a shorter length is that curve's prefix.

The Λ reference is LM-Infinite as its official drop-in sets it (``convert_llama_model(model, L_pretrain, 10)``):
10 starting tokens, the nearest L_pretrain keys (distances 0 … 8,191 on the bundled model), every farther
starting token at distance 8,192; the JSON states that geometry under ``lambda_reference``. Only rows of the
methods asked for are read, so rows a run directory holds from other methods never enter the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# RULER's single-needle task with several needles asked over one haystack: every question is a paired
# observation of every method on the same prefill.
TASKS = "niah(questions=4,max_new_tokens=10)"
# Factor 2 takes PI, NTK and YaRN from 8k to 16k. SelfExtend's window is (L − W)·G + W: group 2 stops at
# 15,360 tokens with a 1,024-token neighbour window, so group 3 is the smallest that reaches 16k.
# ``lambda`` with neither ratio nor budget is LM-Infinite's geometry; the official drop-in keeps 10 starting tokens.
LAMBDA = "lambda(sinks=10)"
METHODS = f"{LAMBDA},pi(factor=2),ntk(factor=2),yarn(factor=2),self-extend(factor=3,window=1024)"
LENGTHS = "8k,12k,16k"  # the target grid; a run of fewer lengths is marked partial against it
TRAINED_WINDOW = 8192  # the bundled model's max_position_embeddings


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _merge(target: Path, part: dict[str, Any]) -> dict[str, Any]:
    result = json.loads(target.read_text()) if target.exists() else {"bench": "position_extension"}
    result.update(part)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1, allow_nan=True))
    return result


def _config(args: argparse.Namespace) -> Any:
    from longscope.runner import RunConfig
    from longscope.spec import parse_lengths, split_list

    return RunConfig(
        model=args.model,
        suite=None,
        tasks=[task for task in args.tasks.split(";") if task],
        lengths=parse_lengths(args.lengths),
        depths=[0.5],
        samples=args.samples,
        seed=args.seed,
        methods=split_list(args.methods),
        mode="multi-request",
    )


def run_tasks(args: argparse.Namespace, target: Path) -> None:
    from longscope.retrieval import parse_retrievers
    from longscope.runner import run

    config = _config(args)
    retrievers = parse_retrievers(args.measure_plane)
    load_before, started = _load(), time.perf_counter()
    run(config, _run_dir(target), show_progress=True, add=True, plane_retrievers=retrievers)
    wall = time.perf_counter() - started
    previous = json.loads(target.read_text()) if target.exists() else {}
    phase = {
        "lengths": config.lengths,
        "samples": args.samples,
        "wall_s": round(wall, 1),
        "load_before": load_before,
        "load_after": _load(),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "device": _device(),
    }
    key = (
        args.lengths if args.seed == 0 else f"{args.lengths} seeds {args.seed}-{args.seed + args.samples - 1}"
    )
    _merge(target, {"tasks_phases": {**previous.get("tasks_phases", {}), key: phase}})
    summarize(args, target)


def _device() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def _run_dir(target: Path) -> Path:
    return target.parent / f"{target.stem}_run"


def lambda_reference(trained: int) -> dict[str, Any]:
    """The Λ reference's geometry on a model trained to ``trained`` tokens, as the method computes it."""
    from types import SimpleNamespace

    from longscope.methods import make_method

    method = make_method(LAMBDA)
    geometry = method.geometry(
        SimpleNamespace(config=SimpleNamespace(max_position_embeddings=trained)), trained
    )
    return {
        "method": method.label(),
        "sinks": geometry.sinks,
        "local_keys": geometry.window + 1,  # the query itself and the window before it
        "distance_cap": geometry.cap,
        "as": f"LM-Infinite convert_llama_model(model, {trained}, {geometry.sinks}): n_global {geometry.sinks}, "
        f"n_local {trained} (distances 0-{trained - 1}), limit_distance {trained}; older keys evicted",
    }


def _stored_rows(run_dir: Path, methods: list[str]) -> list[Any]:
    from longscope.store import RunStore

    store = RunStore.open(run_dir, create=False)
    rows = [row for row in store.results() if row.method in methods]
    store.close()
    return rows


def combined_rows(run_dirs: list[Path], methods: list[str]) -> tuple[list[Any], dict, list[dict]]:
    """The rows of several run directories of the same model and plan, each context (length, sample) taken
    whole from the first directory that holds it, so every paired difference compares methods on one device.
    Also: how many contexts each directory gave per length, and, for each pair of directories, how often
    they gave the same answer to the same question where both ran it."""
    chosen, held = [], set()
    given: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_run = {}
    for run_dir in run_dirs:
        rows = _stored_rows(run_dir, methods)
        name = os.path.relpath(run_dir, HERE.parent)
        by_run[name] = {(r.sample_id, r.method, r.turn): r for r in rows if r.status == "ok"}
        new = {(r.length, r.sample_id) for r in rows} - held
        chosen += [r for r in rows if (r.length, r.sample_id) in new]
        for length, _ in new:
            given[length][name] += 1
        held |= new
    agreement = []
    names = list(by_run)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = sorted(set(by_run[first]) & set(by_run[second]))
            a, b = by_run[first], by_run[second]
            agreement.append({
                "runs": [first, second],
                "answers_compared": len(shared),
                "identical_answers": sum(a[k].prediction == b[k].prediction for k in shared),
                "same_score": sum(a[k].score == b[k].score for k in shared),
                "contexts": sorted({k[0] for k in shared}),
            })  # fmt: skip
    contexts = {str(n): dict(runs) for n, runs in sorted(given.items())}
    return chosen, contexts, agreement


def summarize(args: argparse.Namespace, target: Path) -> None:
    """Scores and paired differences from every row stored so far (a run stopped part-way included), in this
    file's run directory and those of ``--also`` files: each method's questions at each length, and its
    difference from ``lambda`` on shared ones. Probe curves: per method, the one over the most essays."""
    from longscope.analysis.paired import method_differences
    from longscope.methods import make_method, parse_methods
    from longscope.probe import PROBE_FILE
    from longscope.spec import parse_lengths
    from longscope.tasks import make_task

    config = _config(args)
    methods = [method.label() for method in parse_methods(",".join(config.methods))]
    others = [Path(other) for other in args.also]
    rows, contexts_by_run, agreement = combined_rows(
        [_run_dir(target), *(_run_dir(other) for other in others)], methods
    )
    reference = make_method(LAMBDA).label()
    scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    contexts: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        if row.status == "ok" and row.score is not None:
            scores[row.method][row.length].append(100.0 * row.score)
            contexts[row.method][row.length].add(row.sample_id)
    questions = {spec: getattr(make_task(spec), "questions", 1) for spec in config.tasks}
    missing = [
        f"{method} at {length}"
        for method in methods
        for length in parse_lengths(LENGTHS)
        if len(contexts[method][length]) < args.samples
    ]
    own_curves, _ = _best_curves([target])  # the run directory's report draws the curves measured with it
    curves, probe_from = _best_curves([target, *others])
    _merge(
        target,
        {
            "model": args.model,
            "tasks": config.tasks,
            "methods": config.methods,
            "mode": config.mode,
            "questions_per_context": questions,
            "run_dir": os.path.relpath(_run_dir(target), HERE.parent),
            "also_from": [os.path.relpath(_run_dir(other), HERE.parent) for other in others],
            "contexts_by_run": contexts_by_run,
            "agreement_between_runs": agreement,
            "note": "each tasks phase records where it ran and the load average before and after it (other "
            "work may have shared the machine): the timings say how long it took there, not how fast the "
            "methods are",
            "scores": {
                method: {
                    str(n): {
                        "mean": sum(v) / len(v),
                        "questions": len(v),
                        "contexts": len(contexts[method][n]),
                    }
                    for n, v in sorted(by.items())
                }
                for method, by in scores.items()
            },
            "partial": bool(missing),
            "missing": [f"{m} ({args.samples} contexts planned)" for m in missing],
            # Λ-attention is the reference: the method that already read past the window before these.
            "lambda_reference": lambda_reference(TRAINED_WINDOW),
            "paired_against_lambda": [vars(d) for d in method_differences(rows, reference=reference)],
            **({"probe": curves, "probe_from": probe_from} if curves else {}),
        },
    )
    for method, by in sorted(scores.items()):
        print(method, {n: round(sum(v) / len(v), 1) for n, v in sorted(by.items())})
    if own_curves and rows:
        # The report of the run directory draws these beside its scores (longscope report RUN_DIR).
        probe_file = {"model": rows[0].model, "model_revision": rows[0].model_revision,
                      "trained_window": json.loads(target.read_text()).get("trained_window"), "curves": own_curves}  # fmt: skip
        (_run_dir(target) / PROBE_FILE).write_text(json.dumps(probe_file, indent=1, allow_nan=True))


def _best_curves(files: list[Path]) -> tuple[list[dict], dict[str, str]]:
    """Per (method, length), the probe curve over the most essays among ``files``, and which file gave it."""
    best: dict[tuple[str, int], tuple[dict, str]] = {}
    for path in files:
        for curve in json.loads(path.read_text()).get("probe", []) if path.exists() else []:
            key = (curve["method"], curve["length"])
            if key not in best or curve["samples"] > best[key][0]["samples"]:
                best[key] = (curve, os.path.relpath(path, HERE.parent))
    return [c for c, _ in best.values()], {f"{m}@{n}": source for (m, n), (_, source) in best.items()}


def run_probe(args: argparse.Namespace, target: Path) -> None:
    """One method at a time, each merged into the file as it finishes: a probe cut short keeps its curves."""
    from longscope.backends import resolve
    from longscope.methods import parse_methods
    from longscope.probe import probe
    from longscope.spec import parse_lengths

    length = max(parse_lengths(args.lengths))
    backend = resolve(args.model)
    started = [time.perf_counter(), _load()]

    def keep(curve: Any) -> None:
        wall = time.perf_counter() - started[0]
        previous = json.loads(target.read_text()) if target.exists() else {}
        kept = [c for c in previous.get("probe", []) if (c["method"], c["length"]) != (curve.method, length)]
        _merge(
            target,
            {
                "trained_window": backend.context_window,
                "probe_phase": {"length": length, "samples": args.probe_samples, "bin_tokens": args.bin},
                "probe_wall_s": {**previous.get("probe_wall_s", {}), curve.method: round(wall, 1)},
                "probe_load": {**previous.get("probe_load", {}), curve.method: [started[1], _load()]},
                "probe": [*kept, curve.as_dict()],
            },
        )
        print(f"probe {curve.method} {curve.length}: mean NLL {curve.mean:.3f} ({wall:.0f} s)", flush=True)
        started[:] = [time.perf_counter(), _load()]

    # A rerun reads only what the file lacks: a curve at this length and sample count is kept.
    previous = json.loads(target.read_text()).get("probe", []) if target.exists() else []
    done = {c["method"] for c in previous if c["length"] == length and c["samples"] == args.probe_samples}
    todo = [m for m in parse_methods("full," + args.methods) if m.label() not in done]
    if todo:
        probe(backend, [length], todo, args.probe_samples, args.bin, on_curve=keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phase",
        choices=("tasks", "probe", "all", "summarize"),
        default="all",
        help="summarize: rewrite the scores from the rows stored so far, running nothing",
    )
    parser.add_argument(
        "--model",
        default="smollm2",
        help="the bundled model's spec; on a GPU give 'smollm2?precision=fp32' to read as the CPU runs do",
    )
    parser.add_argument("--lengths", default=LENGTHS)
    parser.add_argument("--tasks", default=TASKS, help="';'-separated task specs")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument(
        "--samples", type=int, default=2, help="contexts per length (each asked every question)"
    )
    parser.add_argument(
        "--measure-plane",
        default="bm25,dense",
        help="retrievers that measure each sample's scope and diffusion, as `longscope run` takes them; the "
        "scores do not depend on it (bm25 alone where the embedder is not installed)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the first context's seed: --seed 8 --samples 2 runs contexts 8 and 9",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        help="another result file of the same plan (its run directory beside it) whose contexts fill the ones "
        "this run lacks, e.g. a GPU run's; repeatable",
    )
    parser.add_argument("--probe-samples", type=int, default=1)
    parser.add_argument("--bin", type=int, default=512)
    parser.add_argument("--out", default=str(HERE / "results" / "position_extension.json"))
    args = parser.parse_args()
    target = Path(args.out)
    if args.phase in ("tasks", "all"):
        run_tasks(args, target)
    if args.phase in ("probe", "all"):
        run_probe(args, target)
    if args.phase == "summarize":
        summarize(args, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

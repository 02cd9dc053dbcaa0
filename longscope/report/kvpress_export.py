"""A run's rows in the layout of kvpress's evaluation output, to set beside its leaderboard.

kvpress's ``evaluation/evaluate.py`` writes one folder per (dataset, data_dir, model, press, ratio[, query_aware])
named ``ruler__4096__MODEL__PRESS__0.50[__query_aware]`` holding ``predictions.csv`` (its dataframe less the
context: question, answer_prefix, answer, task, max_new_tokens, predicted_answer, compression_ratio),
``metrics.json`` (``{task: {"string_match": score}}`` from its RULER scorer) and ``config.yaml``. This writes the
same for every method and length of a run: tasks under their RULER names (niah_single_1, vt, cwe, ...), each
press under its leaderboard name where it is the leaderboard's press (``full`` is its ``no_press``), and the
metrics recomputed with kvpress's RULER scorer from the stored predictions, quirks included: control characters
stripped from the prediction, a case-insensitive substring match, ``qa_*`` tasks scored by any answer and the
rest by the share of answers found, rounded to two decimals.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from longscope.core import Result, UsageError
from longscope.store import RunStore

# longscope's RULER-like task specs → the task names in kvpress's RULER dataset.
RULER_NAMES = {
    "niah(haystack=noise)": "niah_single_1",
    "niah": "niah_single_2",
    "niah(value_type=uuid)": "niah_single_3",
    "niah_multikey": "niah_multikey_1",
    "niah_multikey(haystack=needles)": "niah_multikey_2",
    "niah_multikey(haystack=needles,key_type=uuid,value_type=uuid)": "niah_multikey_3",
    "niah_multivalue": "niah_multivalue",
    "niah_multiquery": "niah_multiquery",
    "variable_tracking": "vt",
    "common_words": "cwe",
    "frequent_words": "fwe",
    "ruler_qa:qa_1": "qa_1",
    "ruler_qa:qa_2": "qa_2",
}
# Short method names whose press, at its defaults, is the leaderboard row of the same name.
LEADERBOARD_NAMES = {
    "snapkv": "snapkv", "tova": "tova", "knorm": "knorm", "streaming-llm": "streaming_llm",
    "pyramidkv": "pyramidkv", "observed-attention": "observed_attention", "finch": "finch",
}  # fmt: skip
CSV_COLUMNS = ("question", "answer_prefix", "answer", "task", "max_new_tokens", "predicted_answer",
               "compression_ratio")  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x1f]")


def press_row(label: str) -> tuple[str, float, bool]:
    """A method label as kvpress's (press_name, compression_ratio, query_aware)."""
    from longscope.methods import make_method
    from longscope.methods.kv.leaderboard import LeaderboardPress

    method = make_method(label)
    query_aware = bool(getattr(method, "query_aware", False))
    ratio = float(method.ratio or 0.0)
    if method.name == "full":
        return "no_press", 0.0, False
    if isinstance(method, LeaderboardPress):
        return method.alias, ratio, query_aware
    options = {k: v for k, v in method.options().items() if k != "query_aware"}
    if method.name in LEADERBOARD_NAMES and not options:
        return LEADERBOARD_NAMES[method.name], ratio, query_aware
    name = label.rsplit(":", 1)[0] if method.ratio is not None else label
    return (
        re.sub(r"[^A-Za-z0-9]+", "_", name.replace("(query_aware=True)", "")).strip("_"),
        ratio,
        query_aware,
    )


def string_match(prediction: str, answers: list[str], task: str) -> float:
    """kvpress's RULER scorer for one row (0-100): any answer for qa_* tasks, else the share of answers found."""
    text = _CONTROL.sub("", prediction.strip()).strip().lower()
    found = [1.0 if answer.lower() in text else 0.0 for answer in answers]
    if not found:
        return 0.0
    return 100.0 * (max(found) if task.split("_")[0] == "qa" else sum(found) / len(found))


def folder_name(model: str, press: str, ratio: float, query_aware: bool, length: int) -> str:
    parts = ["ruler", str(length), model.replace("/", "--"), press, f"{ratio:.2f}"]
    return "__".join(parts + (["query_aware"] if query_aware else []))


def export_kvpress(run_dir: Path, out: Path) -> list[Path]:
    """Write kvpress-layout folders for every (method, length) of the run under ``out``; the folders written."""
    if not (run_dir / "run.db").exists():
        raise UsageError(
            f"{run_dir} is not a run directory (no run.db); give the folder `longscope run` wrote"
        )
    store = RunStore.open(run_dir, create=False)
    try:
        rows = [r for r in store.results() if r.status == "ok"]
        samples = {r.sample_id: store.sample(r.sample_id) for r in rows}
    finally:
        store.close()
    groups: dict[tuple[str, int], list[Result]] = defaultdict(list)
    for row in rows:
        groups[(row.method, row.length)].append(row)
    written = []
    for (label, length), group in sorted(groups.items()):
        press, ratio, query_aware = press_row(label)
        folder = out / folder_name(group[0].model or "model", press, ratio, query_aware, length)
        folder.mkdir(parents=True, exist_ok=True)
        table, by_task = [], defaultdict(list)
        for row in sorted(group, key=lambda r: (r.task, r.sample_id, r.turn)):
            sample = samples[row.sample_id]
            if sample is None:
                continue
            turn = sample.turns[row.turn]
            task = RULER_NAMES.get(row.task, row.task)
            table.append({
                "question": turn.question, "answer_prefix": turn.answer_prefix, "answer": list(turn.answers),
                "task": task, "max_new_tokens": sample.max_new_tokens, "predicted_answer": row.prediction,
                "compression_ratio": ratio,
            })  # fmt: skip
            by_task[task].append(string_match(row.prediction, list(turn.answers), task))
        with (folder / "predictions.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows({**r, "answer": str(r["answer"])} for r in table)
        metrics = {task: {"string_match": round(sum(s) / len(s), 2)} for task, s in sorted(by_task.items())}
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=4) + "\n", encoding="utf-8")
        (folder / "config.yaml").write_text(_config_yaml(group[0], press, ratio, query_aware, length, label))
        written.append(folder)
    return written


def _config_yaml(row: Result, press: str, ratio: float, query_aware: bool, length: int, label: str) -> str:
    """The fields of kvpress's EvaluationConfig that apply, plus where the rows came from."""
    fields: dict[str, Any] = {
        "dataset": "ruler", "data_dir": str(length), "model": row.model, "press_name": press,
        "compression_ratio": ratio, "query_aware": query_aware, "fraction": 1.0,
        "longscope_method": label, "longscope_backend": row.backend, "longscope_model_revision": row.model_revision,
    }  # fmt: skip
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in fields.items())

"""The custom loader: JSON, JSONL, Parquet and CSV files, field mappings, a bad record, any scorer, refusals."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score_turn
from longscope.tasks import make_task
from longscope.truncation import request_tokens, truncate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "custom" / "data.jsonl"
LINES = FIXTURE.read_text(encoding="utf-8").splitlines()
RECORDS = [json.loads(line) for line in LINES]
GOOD = RECORDS[:3]  # the fourth has no answers
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _write(path: Path, records: list[dict]) -> Path:
    """The records in the format the suffix names, as a user's tools would write them."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        # Parquet columns have one type: the answers as lists of text, absent fields as nulls.
        rows = [{**r, "answers": [str(a) for a in r.get("answers", [])] or None} for r in records]
        rows = [{**r, "evidence": r.get("evidence") and list(np_list(r["evidence"]))} for r in rows]
        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    elif path.suffix == ".csv":
        names = sorted({key for r in records for key in r})
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            for r in records:
                cells = {k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()}
                writer.writerow(cells)
    return path


def np_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _samples(task):
    backend = shared_tiny_backend()
    task.check(backend, 2048)
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_every_file_type_gives_the_same_samples_and_reports_the_bad_record(tmp_path, suffix):
    path = _write(tmp_path / f"mine{suffix}", RECORDS)
    task = make_task(f"custom(path={path},metric=qa_f1)")
    samples = _samples(task)
    assert [s.id for s in samples] == [
        f"custom(path=mine{suffix},metric=qa_f1)/harbour-{i}" for i in (1, 2, 3)
    ]
    assert [s.question for s in samples] == [r["question"] for r in GOOD]
    assert [s.context for s in samples] == [r["context"] for r in GOOD]
    # the number 9 of the JSON file is the answer "9"; a list stays a list of alternatives
    assert [s.answers for s in samples] == [("Ada Fenwick",), ("9",), ("Vallon", "at Vallon")]
    assert samples[0].evidence == ("The lighthouse keeper, Ada Fenwick, kept a log of every ship.",)
    assert samples[1].evidence == ("9 boats in 1950",) and samples[2].evidence == ()
    assert samples[0].metadata["length"] == 31 and samples[0].metadata["metric"] == "qa_f1"
    assert samples[0].metadata["source"] == "harbour notes"  # other fields travel in the metadata
    where = {".jsonl": "mine.jsonl:4", ".csv": "mine.csv:5"}.get(suffix, f"mine{suffix}#3")
    assert task.rejected() == [(where, "field 'answers' is missing")]


def test_prompt_and_request_as_declared():
    task = make_task(f"custom(path={FIXTURE},max_new_tokens=12)")
    sample = _samples(task)[0]
    assert sample.messages(0)[0]["content"] == (
        f"{GOOD[0]['context']}\n\nQuestion: Who kept a log of every ship?"
    )
    assert sample.turns[0].answer_prefix == "Answer:" and sample.max_new_tokens == 12
    assert task.metric == "contains_any" and task.label() == "custom(path=data.jsonl,max_new_tokens=12)"
    meta = sample.metadata
    assert (meta["benchmark"], meta["record"], meta["truncation"]) == ("custom", "data.jsonl:1", "none")
    assert meta["realised_tokens"] == request_tokens(shared_tiny_backend(), sample)


def test_field_mappings_and_own_template(tmp_path):
    own = [
        {"qid": f"q{i}", "doc": r["context"], "query": r["question"], "gold": r["answers"]}
        for i, r in enumerate(GOOD)
    ]
    path = _write(tmp_path / "mapped.jsonl", own)
    task = make_task(
        f"custom(path={path},context=doc,question=query,answers=gold,id=qid,"
        "template=Read: {context} | Q: {question} | {literal})"
    )
    samples = _samples(task)
    assert [s.id.rsplit("/", 1)[1] for s in samples] == ["q0", "q1", "q2"]
    assert samples[2].answers == ("Vallon", "at Vallon")
    assert samples[0].messages(0)[0]["content"] == (
        f"Read: {GOOD[0]['context']} | Q: Who kept a log of every ship? | {{literal}}"
    )
    assert "doc" not in samples[0].metadata and "query" not in samples[0].metadata


def test_a_record_with_bad_fields_is_skipped_with_its_reason(tmp_path):
    rows = [
        GOOD[0],
        {**GOOD[1], "evidence": "twelve boats"},
        {**GOOD[2], "answers": {"text": "Vallon"}},
        {**GOOD[2], "id": "x", "length": "long"},
        "{not json",
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    task = make_task(f"custom(path={path})")
    assert len(task.records()) == 1
    reasons = dict(task.rejected())
    assert reasons["mixed.jsonl:2"] == "evidence 'twelve boats' is not a substring of the context"
    assert reasons["mixed.jsonl:3"] == "field 'answers' should be a text or a list of texts"
    assert reasons["mixed.jsonl:4"] == "field 'length' should be a whole number"
    assert reasons["mixed.jsonl:5"].startswith("not valid JSON")


def test_any_registered_scorer_scores_it_and_the_end_to_end_run_on_a_tiny_model():
    backend = shared_tiny_backend()
    # qa_f1: 2 of the 4 reply tokens are gold and both gold tokens are named: P = 1/2, R = 1, F1 = 2/3
    for metric, reply, expected in [
        ("qa_f1", "Ada Fenwick kept it", 2 / 3),
        ("contains_any", "ada fenwick.", 1.0),
    ]:
        task = make_task(f"custom(path={FIXTURE},metric={metric})")
        sample = _samples(task)[0]
        got, _ = score_turn(task.metric, reply, sample.turns[0], sample.metadata)
        assert got == pytest.approx(expected)
    judged = _samples(make_task(f"custom(path={FIXTURE},metric=judge)"))[0]
    assert judged.metadata["judge_prompt"] == "reference" and make_task("custom(metric=judge)").needs_judge
    generation = backend.generate(sample.request(max_new_tokens=4))
    assert generation.output_tokens <= 4
    assert score_turn("contains_any", generation.text, sample.turns[0], sample.metadata)[0] in (0.0, 1.0)


def test_an_over_long_record_is_cut_in_the_middle_as_published_records_are():
    backend = shared_tiny_backend()
    task = make_task(f"custom(path={FIXTURE})")
    assert task.truncation == "middle"
    sample = _samples(task)[0]
    window = request_tokens(backend, sample) - 10
    cut, record = truncate(backend, sample, window, task.truncation)
    assert cut is not None and record["truncation"] == "middle" and record["truncated_tokens"] >= 10
    assert cut.context.startswith("The harbour") and cut.context.endswith("town archive.")


@pytest.mark.parametrize(
    ("spec", "content", "message"),
    [
        ("custom(metric=qa_f11)", None, "custom: there is no scorer 'qa_f11'; did you mean qa_f1, qa_f1_zh"),
        (
            "custom(qestion=query)",
            None,
            "task custom: unknown parameter 'qestion'; did you mean 'question'? parameters: ",
        ),
        ("custom(template=no placeholders)", None, "custom: template must hold {context}"),
        ("custom(question=context)", None, "custom: field 'context' is mapped to two roles"),
        (
            "custom(question=query)",
            [{"context": "c", "question": "q", "answers": ["a"]}],
            "custom: no record of {path} has the field(s) 'query' (question); its fields: answers, context, "
            "question; map yours, e.g. custom(path=..., question=FIELD)",
        ),
        (
            "custom",
            [{"_id": "1", "input": "q", "context": "c", "answers": ["a"], "length": 3, "dataset": "hotpotqa",
              "language": "en", "all_classes": None}],
            "custom: no record of {path} has the field(s) 'question'; its fields: _id, all_classes, answers, "
            "context, dataset, input, language, length; it has the shape of longbench records: run it as --tasks "
            "longbench --data {path}",
        ),
        (
            "custom",
            [{"context": "c", "question": "q", "answers": []}],
            "data.jsonl: none of its 1 records fits custom (the first: no gold answer)",
        ),
        ("custom", "plain text", "cannot read {path}: custom data must be a .jsonl, .json, .parquet, .csv file"),
        ("custom", ["empty-path"], "custom reads your own file: give it as custom(path=FILE) or --data FILE"),
    ],
)  # fmt: skip
def test_each_refusal_is_one_usage_error_before_anything_runs(tmp_path, spec, content, message):
    path = tmp_path / ("data.txt" if isinstance(content, str) else "data.jsonl")
    if isinstance(content, str):
        path.write_text(content)
    elif content and isinstance(content[0], dict):
        _write(path, content)
    with pytest.raises(UsageError) as caught:
        task = make_task(spec)
        if content is not None:
            task = task.with_data(None if content == ["empty-path"] else str(path))
            task.check(shared_tiny_backend(), 2048)
    assert str(caught.value).startswith(message.replace("{path}", str(path)))
    assert "\n" not in str(caught.value)


@pytest.mark.slow  # two runs of the real command line (a model load each)
def test_a_run_from_the_command_line_skips_the_bad_record_and_refuses_bad_input_in_one_line(
    tmp_path, tiny_model_dir
):
    out = tmp_path / "run"
    done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", f"custom(path={FIXTURE},metric=qa_f1,max_new_tokens=4)",
                   "--out", str(out), "--no-progress", env=OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "run.db") as db:
        rows = db.execute("SELECT status, error FROM results").fetchall()
    assert sorted(status for status, _ in rows) == ["ok", "ok", "ok", "skipped"]
    assert [error for status, error in rows if status == "skipped"][0].startswith(
        "invalid record data.jsonl:4"
    )
    refused = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", "custom(metric=rouge_lx)",
                      "--data", str(FIXTURE), "--out", str(tmp_path / "no"), "--no-progress", env=OFFLINE)  # fmt: skip
    assert refused.returncode == 2 and "there is no scorer 'rouge_lx'" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()

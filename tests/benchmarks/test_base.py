"""The benchmark loader base: reading files, validating records, subsets, the hub offline, ids and metadata."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar

import pydantic
import pytest
from conftest import prompt_tokens, shared_tiny_backend

from benchmarks.offline import force_offline
from longscope.core import Sample, Turn, UsageError
from longscope.tasks.benchmarks.base import (
    Benchmark,
    Record,
    check_fields,
    length_bucket,
    load_hub,
    read_records,
)


@dataclass(frozen=True)
class Toy(Benchmark):
    name: ClassVar[str] = "toy"
    hub_id: ClassVar[str] = "example/toy-benchmark"
    subsets: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    fields: ClassVar[dict] = {"_id": str, "question": str, "context": str, "answers": list[str], "n": int}

    @property
    def diffusion(self) -> float:
        return 0.2

    @property
    def scope(self) -> float:
        return 0.3

    def validate(self, data: dict) -> str | None:
        return None if data["answers"] else "no gold answer"

    def to_sample(self, record: Record, index: int, backend) -> Sample:
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=record.data["context"],
            turns=(Turn(record.data["question"], tuple(record.data["answers"]), "Answer:"),),
            template="Read this.\n{context}\nQuestion: {question}",
            max_new_tokens=16,
            metadata={"n": record.data["n"]},
        )


def _row(i: int, **changes) -> dict:
    row = {
        "_id": f"id{i}",
        "question": f"What is {i}?",
        "context": f"The value is {i}. " * 3,
        "answers": [str(i)],
    }
    return {**row, "n": i, **changes}


def _write_jsonl(path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- reading files ------------------------------------------------------------------------------------


def test_jsonl_bad_line_is_reported_by_line_and_the_rest_is_read(tmp_path):
    path = tmp_path / "alpha.jsonl"
    _write_jsonl(path, [_row(0), "{not json", "", "[1, 2]", _row(4)])
    got = list(read_records(path))
    assert [ref for ref, _ in got] == ["alpha.jsonl:1", "alpha.jsonl:2", "alpha.jsonl:4", "alpha.jsonl:5"]
    assert got[0][1] == _row(0) and got[3][1] == _row(4)
    assert got[1][1].startswith("not valid JSON")
    assert got[2][1] == "not a JSON object (list)"


def test_json_list_and_data_wrapper_and_parquet(tmp_path):
    import pyarrow
    import pyarrow.parquet

    rows = [_row(0), _row(1)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(json.dumps({"data": rows}))
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "c.parquet")
    for name in ("a.json", "b.json", "c.parquet"):
        got = list(read_records(tmp_path / name))
        assert got == [(f"{name}#0", rows[0]), (f"{name}#1", rows[1])]


def test_json_lines_saved_as_json_are_read_as_lines(tmp_path):
    path = tmp_path / "alpha.json"
    _write_jsonl(path, [_row(0), _row(1)])
    assert [ref for ref, _ in read_records(path)] == ["alpha.json:1", "alpha.json:2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.csv", "a,b\n1,2\n", "must be a .jsonl, .json, .parquet file"),
        ("data.json", "{broken", "not valid JSON"),
        ("data.json", '{"rows": []}', "must hold a list of records"),
        ("data.parquet", "this is not parquet", "not a Parquet file"),
    ],
)
def test_a_file_in_the_wrong_format_is_one_usage_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        list(read_records(path))


def test_a_jsonl_file_with_no_readable_line_is_a_usage_error(tmp_path):
    path = tmp_path / "alpha.jsonl"
    path.write_text("id,question\n1,what\n")
    with pytest.raises(UsageError, match="alpha.jsonl holds no readable JSON records"):
        Toy(data=str(path)).records()


# --- validation -----------------------------------------------------------------------------------------


def test_check_fields_reasons():
    fields = {"a": str, "b": list[str], "c": int, "d": float, "e": list[str] | None}
    good = {"a": "x", "b": ["y"], "c": 1, "d": 2, "e": None}
    assert check_fields(good, fields) is None
    assert check_fields({**good, "e": ["z"]}, fields) is None
    assert check_fields({"b": []}, fields) == "field 'a' is missing"
    assert check_fields({**good, "b": "y"}, fields) == "field 'b' should be list[str], got str"
    assert (
        check_fields({**good, "b": ["y", 3]}, fields)
        == "field 'b' should be list[str], got list of str and int"
    )
    assert check_fields({**good, "c": True}, fields) == "field 'c' should be int, got bool"
    assert check_fields({**good, "c": 1.5}, fields) == "field 'c' should be int, got float"
    assert check_fields({**good, "e": "z"}, fields) == "field 'e' should be list[str] | None, got str"


def test_invalid_records_are_rejected_with_reasons_and_the_rest_load(tmp_path):
    path = tmp_path / "alpha.jsonl"
    no_question = {k: v for k, v in _row(1).items() if k != "question"}
    _write_jsonl(path, [_row(0), no_question, _row(2, n="2"), "oops", _row(4, answers=[]), _row(5)])
    task = Toy(data=str(path))
    assert [r.data["_id"] for r in task.records()] == ["id0", "id5"]
    assert task.rejected() == [
        ("alpha.jsonl:2", "field 'question' is missing"),
        ("alpha.jsonl:3", "field 'n' should be int, got str"),
        ("alpha.jsonl:4", "not valid JSON (Expecting value at column 1)"),
        ("alpha.jsonl:5", "no gold answer"),
    ]
    assert task.work([1024], [0.5], [0, 1]) == [(0, None, 0), (0, None, 1)]


# --- data sources ---------------------------------------------------------------------------------------


def test_a_directory_without_the_expected_files_names_them(tmp_path):
    (tmp_path / "other.jsonl").write_text(json.dumps(_row(0)))
    with pytest.raises(UsageError) as error:
        Toy(subset="alpha", data=str(tmp_path)).records()
    message = str(error.value)
    assert "\n" not in message
    for name in ("alpha.jsonl", "data/alpha.jsonl", "alpha.json", "alpha.parquet"):
        assert name in message


def test_a_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or directory"):
        Toy(data=str(tmp_path / "nowhere")).records()


def test_directory_subset_file_and_all_subsets(tmp_path):
    _write_jsonl(tmp_path / "data" / "alpha.jsonl", [_row(0), _row(1)])
    _write_jsonl(tmp_path / "beta.jsonl", [_row(2)])
    alpha = Toy(subset="alpha", data=str(tmp_path))
    assert [(r.ref, r.subset) for r in alpha.records()] == [
        ("alpha.jsonl:1", "alpha"),
        ("alpha.jsonl:2", "alpha"),
    ]
    both = Toy(data=str(tmp_path))  # no subset named: every subset whose file is there
    assert [(r.data["_id"], r.subset) for r in both.records()] == [
        ("id0", "alpha"),
        ("id1", "alpha"),
        ("id2", "beta"),
    ]
    single = Toy(data=str(tmp_path / "beta.jsonl"))  # a file is read as it is
    assert [(r.data["_id"], r.subset) for r in single.records()] == [("id2", "")]


def test_unknown_subset_lists_the_subsets():
    with pytest.raises(UsageError, match=r"unknown subset 'gamma' of toy; subsets: alpha, beta"):
        Toy(subset="gamma")
    # The command line builds tasks through pydantic: the same one line must come out, not a ValidationError.
    with pytest.raises(UsageError, match="unknown subset 'gamma'"):
        pydantic.TypeAdapter(Toy).validate_python({"subset": "gamma"})
    with pytest.raises(UsageError, match="limit must be at least 1"):
        Toy(limit=0)


def test_limit_takes_the_first_valid_records_of_each_subset(tmp_path):
    _write_jsonl(tmp_path / "alpha.jsonl", [_row(0), "bad", _row(2), _row(3)])
    _write_jsonl(tmp_path / "beta.jsonl", [_row(4), _row(5), _row(6)])
    task = Toy(data=str(tmp_path), limit=2)
    assert [r.data["_id"] for r in task.records()] == ["id0", "id2", "id4", "id5"]
    assert task.rejected() == [("alpha.jsonl:2", "not valid JSON (Expecting value at column 1)")]
    assert [r.data["_id"] for r in Toy(subset="beta", data=str(tmp_path), limit=1).records()] == ["id4"]


def test_hub_offline_tells_to_pass_data(monkeypatch, tmp_path):
    connections = force_offline(monkeypatch, tmp_path)
    expected = (
        r"^cannot reach the dataset hub for example/toy-benchmark \(offline\?\).*"
        r"download the data and pass --data PATH$"
    )
    with pytest.raises(UsageError, match=expected) as error:
        Toy(subset="alpha").records()
    assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match=expected):
        load_hub({"path": "example/toy-benchmark", "name": "beta", "split": "test"})
    assert connections == []


def test_with_data_only_fills_an_unset_source(tmp_path):
    task = Toy(subset="alpha")
    assert task.with_data(str(tmp_path)).data == str(tmp_path)
    assert task.with_data(None) is task
    given = Toy(data="mine.jsonl")
    assert given.with_data(str(tmp_path)) is given


def test_cache_token_follows_the_file(tmp_path):
    path = tmp_path / "alpha.jsonl"
    _write_jsonl(path, [_row(0)])
    before = Toy(data=str(path)).cache_token()
    assert Toy(data=str(path)).cache_token() == before
    _write_jsonl(path, [_row(0), _row(1)])
    assert Toy(data=str(path)).cache_token() != before
    assert Toy(subset="alpha").cache_token() != Toy(subset="beta").cache_token()  # hub: by its arguments


# --- ids and samples --------------------------------------------------------------------------------------


def test_sample_ids_are_stable_and_unique(tmp_path):
    path = tmp_path / "alpha.jsonl"
    no_id = _row(9)
    del no_id["_id"]
    _write_jsonl(path, [_row(0), _row(1), _row(0, n=7)])
    task = Toy(data=str(path))
    ids = [task.sample_id(0, None, i) for i in range(3)]
    label = task.label()
    assert ids == [f"{label}/id0", f"{label}/id1", f"{label}/id0~2"]
    assert [Toy(data=str(path)).sample_id(0, None, i) for i in range(3)] == ids  # same in a new run

    @dataclass(frozen=True)
    class NoIds(Toy):
        id_field: ClassVar[str | None] = None

    assert NoIds(data=str(path)).sample_id(0, None, 1) == f"{NoIds(data=str(path)).label()}/r1"


def test_length_bucket_rounds_up_to_powers_of_two():
    assert [length_bucket(n) for n in (1, 1024, 1025, 2048, 3000, 5000, 70000)] == [
        1024,
        1024,
        2048,
        2048,
        4096,
        8192,
        131072,
    ]


def test_build_adds_the_common_metadata(tmp_path):
    path = tmp_path / "alpha.jsonl"
    _write_jsonl(path, [_row(0), _row(1)])
    backend = shared_tiny_backend()
    task = Toy(subset="alpha", data=str(path))
    sample = task.build(backend, 0, None, 1)
    assert sample.id == f"{task.label()}/id1" and sample.context == _row(1)["context"]
    meta = sample.metadata
    tokens = prompt_tokens(backend, sample)
    assert meta["prompt_tokens"] == tokens
    assert meta["realised_tokens"] == tokens + 16
    assert meta["length_bucket"] == length_bucket(tokens + 16)
    assert meta["realised_chars"] == len(backend.render(sample.messages(0), "Answer:"))
    assert (meta["benchmark"], meta["subset"], meta["record"], meta["seed"]) == (
        "toy",
        "alpha",
        "alpha.jsonl:2",
        1,
    )
    assert (meta["truncation"], meta["diffusion"], meta["scope"], meta["n"]) == ("none", 0.2, 0.3, 1)
    assert meta["tokenizer"] == backend.tokenizer_fingerprint()
    capped = Toy(subset="alpha", data=str(path), max_new_tokens=4).build(backend, 0, None, 1)
    assert capped.max_new_tokens == 4 and capped.metadata["realised_tokens"] == tokens + 4
    with pytest.raises(UsageError, match="has 2 records; there is no record 5"):
        task.build(backend, 0, None, 5)


def test_label_reads_like_the_command_line_and_leaves_out_the_data_path(tmp_path):
    assert Toy().label() == "toy"
    assert Toy(subset="alpha", data=str(tmp_path)).label() == "toy:alpha"
    assert Toy(subset="beta", limit=3, data=str(tmp_path)).label() == "toy:beta(limit=3)"


def test_selects_filters_valid_records_before_the_limit(tmp_path):
    @dataclass(frozen=True)
    class EvenOnly(Toy):
        def selects(self, data: dict) -> bool:
            return data["n"] % 2 == 0

    path = tmp_path / "alpha.jsonl"
    _write_jsonl(path, [_row(1), _row(2), _row(3, n="x"), _row(4), _row(6)])
    task = EvenOnly(data=str(path), limit=2)
    assert [r.data["n"] for r in task.records()] == [2, 4]
    assert task.rejected() == [
        ("alpha.jsonl:3", "field 'n' should be int, got str")
    ]  # invalid still reported

"""Reading never needs write access and never leaves files behind; bad records cost only themselves."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import tiny_backend

from longscope.config import RunConfig
from longscope.core import UsageError
from longscope.runner import run
from longscope.store import RunStore
from longscope.tasks import make_task
from longscope.tasks.benchmarks.base import MAX_RECORD_BYTES

from .test_bad_input import invoke

HOTPOT = Path(__file__).parent.parent / "fixtures" / "longbench" / "hotpotqa.jsonl"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=4)"], lengths=[384])
    run(config, out, backend=tiny_backend(), show_progress=False, plane_retrievers=())
    return out


def test_reading_a_run_opens_it_read_only_and_creates_nothing(finished_run, monkeypatch, capsys):
    before = sorted(p.name for p in finished_run.iterdir())
    store = RunStore.open(finished_run, create=False)
    try:
        assert len(store.results()) == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.set_meta("state", "tampered")
    finally:
        store.close()
    code, out, err = invoke(monkeypatch, capsys, ["show", str(finished_run)])
    assert code == 0 and "niah" in out
    assert sorted(p.name for p in finished_run.iterdir()) == before  # no -shm, no -wal


def test_a_read_only_run_directory_is_named_as_such_not_as_corrupt(finished_run, monkeypatch):
    real_access = os.access

    def read_only(path, mode, *args, **kwargs):
        if Path(path).resolve().is_relative_to(finished_run.resolve()) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", read_only)
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=4)"], lengths=[384])
    with pytest.raises(UsageError, match="read-only") as caught:
        run(config, finished_run, backend=tiny_backend(), show_progress=False, plane_retrievers=())
    assert "corrupt" not in str(caught.value) and "\n" not in str(caught.value)


def _hotpot_records() -> list[str]:
    lines = []
    for line in HOTPOT.read_text().splitlines():
        try:
            if isinstance(json.loads(line), dict):
                lines.append(line)
        except json.JSONDecodeError:
            pass
    return lines


def test_one_bad_line_among_good_ones_costs_only_itself(tmp_path):
    good = _hotpot_records()[:2]
    huge = json.dumps({"input": "q", "context": "x" * (MAX_RECORD_BYTES + 10), "answers": ["a"]})
    path = tmp_path / "hotpotqa.jsonl"
    path.write_bytes(
        good[0].encode()
        + b"\n"
        + b'{"input": "caf\xe9"}\n'
        + huge.encode()
        + b"\n\x00\n"
        + good[1].encode()
        + b"\n"
    )
    task = make_task("longbench:hotpotqa").with_data(str(path))
    assert [record.ref for record in task.records()] == ["hotpotqa.jsonl:1", "hotpotqa.jsonl:5"]
    reasons = dict(task.rejected())
    assert reasons["hotpotqa.jsonl:2"] == "not UTF-8 text (byte 15)"
    assert reasons["hotpotqa.jsonl:3"].startswith(f"a record of {len(huge):,} bytes, over the 16 MiB")
    assert reasons["hotpotqa.jsonl:4"].startswith("not valid JSON")

"""A run directory tells one story: the same plan resumes, another plan is refused unless added on purpose,
and every invocation is recorded so that the re-run commands reproduce every row."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import tiny_backend

from longscope.config import RunConfig
from longscope.core import UsageError
from longscope.runner import run
from longscope.store import DB_NAME, RunStore

BASE = dict(model="hf:tiny", tasks=["niah(max_new_tokens=4)"], lengths=[384], depths=[0.5])


def keys(run_dir):
    with sqlite3.connect(run_dir / DB_NAME) as db:
        return sorted(row[0] for row in db.execute("SELECT key FROM results"))


def invocations(run_dir):
    store = RunStore.open(run_dir, create=False)
    try:
        return store.get_meta("invocations")
    finally:
        store.close()


def test_the_same_plan_resumes_and_a_new_threshold_is_not_a_new_plan(tmp_path):
    backend = tiny_backend()
    run(RunConfig(**BASE), tmp_path, backend=backend, show_progress=False)
    run(RunConfig(**BASE, threshold=50.0, retries=3), tmp_path, backend=backend, show_progress=False)
    assert len(keys(tmp_path)) == 1 and len(invocations(tmp_path)) == 1


@pytest.mark.parametrize(
    "change, words",
    [
        ({"tasks": ["niah_multikey(max_new_tokens=4)"]}, "tasks"),
        ({"lengths": [384, 448]}, "lengths 384 there, 384,448 here"),
        ({"methods": ["full", "truncate:budget=64"]}, "methods"),
        ({"samples": 2}, "samples 1 there, 2 here"),
        ({"mode": "multi-request"}, "mode"),
    ],
)
def test_another_plan_is_refused_with_what_differs_and_nothing_is_written(tmp_path, change, words):
    backend = tiny_backend()
    run(RunConfig(**BASE), tmp_path, backend=backend, show_progress=False)
    before = keys(tmp_path)
    with pytest.raises(UsageError, match=f"holds another plan \\({words}.*--add") as caught:
        run(RunConfig(**{**BASE, **change}), tmp_path, backend=backend, show_progress=False)
    assert "\n" not in str(caught.value)
    assert keys(tmp_path) == before and len(invocations(tmp_path)) == 1


def test_add_records_every_invocation_and_replaying_them_gives_the_same_rows(tmp_path):
    backend = tiny_backend()
    first = RunConfig(**BASE)
    second = RunConfig(**{**BASE, "tasks": ["niah_multikey(max_new_tokens=4)"], "lengths": [384, 448]})
    run(first, tmp_path / "a", backend=backend, show_progress=False)
    run(second, tmp_path / "a", backend=backend, show_progress=False, add=True)
    recorded = invocations(tmp_path / "a")
    assert [RunConfig.from_dict(c) for c in recorded] == [first, second]
    # Running the recorded invocations again, in order, into a fresh directory reproduces every row.
    for index, raw in enumerate(recorded):
        replay = RunConfig.from_argv(RunConfig.from_dict(raw).to_argv())
        run(replay, tmp_path / "b", backend=backend, show_progress=False, add=index > 0)
    assert keys(tmp_path / "b") == keys(tmp_path / "a") and len(keys(tmp_path / "a")) == 3
    # Resuming either invocation later is the same plan, not a new one.
    run(first, tmp_path / "a", backend=backend, show_progress=False)
    assert len(invocations(tmp_path / "a")) == 2


def test_another_model_is_refused_even_with_add(tmp_path):
    run(RunConfig(**BASE), tmp_path, backend=tiny_backend(), show_progress=False)
    other = tiny_backend("llama3")
    with pytest.raises(UsageError, match="holds results of"):
        run(RunConfig(**BASE), tmp_path, backend=other, show_progress=False, add=True)

"""Runner and store: one row per sample, resume without loss or duplicates, failures kept as rows."""

from __future__ import annotations

import json
import sqlite3
from typing import ClassVar

import pytest
from conftest import tiny_backend

from longscope.core import UsageError
from longscope.runner import RunConfig, run
from longscope.spec import parse_depths, parse_lengths
from longscope.store import DB_NAME, RunStore
from longscope.tasks import TASKS
from longscope.tasks.niah import Niah


class CountingBackend:
    """Wraps a backend, counts generate calls, and fails the samples it is told to fail."""

    def __init__(self, inner, fail_when=lambda request: False):
        self.inner = inner
        self.calls = 0
        self.fail_when = fail_when
        for name in ("kind", "model_name", "model_revision", "context_window"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        self.calls += 1
        if self.fail_when(request):
            raise RuntimeError("simulated out of memory")
        return self.inner.generate(request)


CONFIG = dict(tasks=["niah", "niah_multikey"], lengths=[512, 1024], depths=[0.0, 1.0], samples=2)


def rows(run_dir):
    with sqlite3.connect(run_dir / DB_NAME) as db:
        return db.execute("SELECT key, status, attempts, error FROM results").fetchall()


def test_run_writes_one_row_per_planned_sample_and_resume_skips_them(tmp_path):
    backend = CountingBackend(tiny_backend())
    summary = run(RunConfig(model="hf:tiny", **CONFIG), tmp_path, backend=backend, show_progress=False)
    assert backend.calls == 2 * 2 * 2 * 2
    assert len(rows(tmp_path)) == 16 and {r[1] for r in rows(tmp_path)} == {"ok"}
    assert summary.primary.tasks == ["niah", "niah_multikey"] and summary.primary.lengths == [512, 1024]
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        identity = set(db.execute("SELECT backend, model, model_revision FROM results"))
    assert identity == {("hf", "tiny-llama-chatml-bytelevel", "test")}
    assert all(
        summary.primary.cells[(t, n)].n == 4 for t in summary.primary.tasks for n in summary.primary.lengths
    )

    again = CountingBackend(tiny_backend())
    run(RunConfig(model="hf:tiny", **CONFIG), tmp_path, backend=again, show_progress=False)
    assert again.calls == 0 and len(rows(tmp_path)) == 16

    # Extending the plan runs only what is new.
    more = CountingBackend(tiny_backend())
    run(RunConfig(model="hf:tiny", **{**CONFIG, "lengths": [512, 1024, 1536]}), tmp_path, backend=more,
        show_progress=False, add=True)  # fmt: skip
    assert more.calls == 8 and len(rows(tmp_path)) == 24


def test_failures_are_retried_then_recorded_and_retried_on_the_next_run(tmp_path):
    flaky = CountingBackend(tiny_backend(), fail_when=lambda request: True)
    config = RunConfig(model="hf:tiny", tasks=["niah"], lengths=[512], depths=[0.5], samples=3, retries=2)
    summary = run(config, tmp_path, backend=flaky, show_progress=False)
    assert flaky.calls == 3 * 3  # each sample tried 1 + 2 times
    recorded = rows(tmp_path)
    assert len(recorded) == 3
    assert all(status == "failed" and attempts == 3 and "simulated out of memory" in error
               for _, status, attempts, error in recorded)  # fmt: skip
    assert summary.failed == 3 and summary.primary.cells[("niah", 512)].n == 0

    healthy = CountingBackend(tiny_backend())
    summary = run(config, tmp_path, backend=healthy, show_progress=False)
    assert healthy.calls == 3
    recorded = rows(tmp_path)
    assert len(recorded) == 3 and all(status == "ok" and attempts == 4 for _, status, attempts, _ in recorded)
    assert summary.failed == 0 and summary.primary.cells[("niah", 512)].n == 3


def test_some_failures_leave_the_rest_scored(tmp_path):
    # Only the longer prompts fail: the short ones must still be scored and kept.
    backend = CountingBackend(
        tiny_backend(), fail_when=lambda request: len(request.messages[0]["content"]) > 1800
    )
    summary = run(RunConfig(model="hf:tiny", tasks=["niah"], lengths=[512, 1024], depths=[0.0, 0.5, 1.0],
                            samples=2, retries=0), tmp_path, backend=backend, show_progress=False)  # fmt: skip
    assert len(rows(tmp_path)) == 12
    assert summary.primary.cells[("niah", 512)].n == 6 and summary.primary.cells[("niah", 512)].failed == 0
    assert summary.primary.cells[("niah", 1024)].n == 0 and summary.primary.cells[("niah", 1024)].failed == 6


def test_a_different_model_cannot_write_into_a_run(tmp_path):
    run(RunConfig(model="hf:tiny", tasks=["niah"], lengths=[512], depths=[0.5]), tmp_path,
        backend=tiny_backend("chatml"), show_progress=False)  # fmt: skip
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(UsageError, match="holds results of"):
        run(RunConfig(model="hf:other", tasks=["niah"], lengths=[512], depths=[0.5]), tmp_path,
            backend=tiny_backend("llama3"), show_progress=False)  # fmt: skip
    assert (tmp_path / DB_NAME).read_bytes() == before


def test_length_above_the_window_fails_before_any_sample(tmp_path):
    backend = CountingBackend(tiny_backend())
    with pytest.raises(UsageError, match="above the context window"):
        run(RunConfig(model="hf:tiny", tasks=["niah"], lengths=[1024, 16384]), tmp_path, backend=backend,
            show_progress=False)  # fmt: skip
    assert backend.calls == 0 and not (tmp_path / DB_NAME).exists()


def test_a_task_that_cannot_fit_fails_before_any_sample_and_writes_nothing(tmp_path):
    backend = CountingBackend(tiny_backend())
    with pytest.raises(UsageError, match="length too short"):
        run(RunConfig(model="hf:tiny", tasks=["niah", "niah_multiquery"], lengths=[200, 1024]), tmp_path,
            backend=backend, show_progress=False)  # fmt: skip
    assert backend.calls == 0 and not (tmp_path / DB_NAME).exists()


def test_foreign_and_corrupt_databases_are_refused_and_left_as_they_were(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / DB_NAME) as db:
        db.execute("CREATE TABLE results (x)")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / DB_NAME).write_bytes(b"SQLite format 3\x00" + b"\x07" * 300)
    for folder, message in ((foreign, "did not write"), (corrupt, "corrupt or not an SQLite")):
        before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
        with pytest.raises(UsageError, match=message):
            run(RunConfig(model="hf:tiny", tasks=["niah"], lengths=[512]), folder, backend=tiny_backend(),
                show_progress=False)  # fmt: skip
        with pytest.raises(UsageError, match=message):
            RunStore.open(folder, create=False)
        assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before


def test_length_and_depth_parsing():
    assert parse_lengths("1k,2k, 4096,1.5k") == [1024, 1536, 2048, 4096]
    assert parse_depths("0,0.5,1") == [0.0, 0.5, 1.0]
    for bad in ("4q", "0", "1.3", ""):
        with pytest.raises(UsageError):
            parse_lengths(bad)
    for bad in ("1.5", "x", ""):
        with pytest.raises(UsageError):
            parse_depths(bad)


class OverlongNiah(Niah):
    """Stands in for published data: its samples come out twice as long as the length asked for."""

    name: ClassVar[str] = "overlong_niah"

    def build(self, backend, length, depth, seed):
        return super().build(backend, length * 2, depth, seed)


@pytest.mark.parametrize("policy", ["middle", "left", "right", "skip"])
def test_samples_above_the_window_follow_the_truncation_policy(tmp_path, monkeypatch, policy):
    monkeypatch.setitem(TASKS._items, OverlongNiah.name, OverlongNiah)
    backend = CountingBackend(tiny_backend())
    backend.context_window = 700
    config = RunConfig(model="hf:tiny", tasks=["overlong_niah"], lengths=[512], depths=[0.5], samples=2,
                       truncation=policy)  # fmt: skip
    summary = run(config, tmp_path, backend=backend, show_progress=False)
    recorded = rows(tmp_path)
    assert len(recorded) == 2
    if policy == "skip":
        assert backend.calls == 0 and summary.skipped == 2 and summary.failed == 0
        assert {status for _, status, _, _ in recorded} == {"skipped"}
    else:
        assert backend.calls == 2 and summary.truncated == 2 and summary.skipped == 0
        with sqlite3.connect(tmp_path / DB_NAME) as db:
            bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM samples")]
        for body in bodies:
            assert body["metadata"]["truncation"] == policy
            assert body["metadata"]["realised_tokens"] <= 700

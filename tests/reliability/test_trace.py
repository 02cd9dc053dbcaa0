"""The opt-in trace the crash tests aim their kills with: silent when unset, one line per point when set, and a
hold at exactly the named occurrence."""

from __future__ import annotations

import time

from longscope import trace

from .test_bad_input import invoke


def test_unset_writes_nothing_and_never_waits(tmp_path, monkeypatch):
    monkeypatch.delenv(trace.TRACE_VARIABLE, raising=False)
    monkeypatch.setenv(trace.HOLD_VARIABLE, "prefill:1")  # a hold alone does nothing: the trace is off
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    trace.point("prefill")
    assert time.monotonic() - started < 1 and list(tmp_path.iterdir()) == []


def test_each_point_appends_its_occurrence_and_only_the_named_one_holds(tmp_path, monkeypatch):
    path = tmp_path / "run.trace"
    monkeypatch.setenv(trace.TRACE_VARIABLE, str(path))
    monkeypatch.setattr(trace, "_seen", type(trace._seen)())
    held = []
    monkeypatch.setattr(trace.time, "sleep", held.append)
    monkeypatch.setenv(trace.HOLD_VARIABLE, "store-write:2")
    for name in ("model-load", "store-write", "sample-done", "store-write", "store-write"):
        trace.point(name)
    events = trace.read(path)
    assert [event[:2] for event in events] == [
        ("model-load", 1), ("store-write", 1), ("sample-done", 1), ("store-write", 2), ("store-write", 3)
    ]  # fmt: skip
    assert held == [trace.HOLD_S]  # the second store write alone waited for its kill
    assert trace.read(tmp_path / "absent.trace") == []


def test_a_real_run_passes_every_point_in_order(tmp_path, monkeypatch, capsys, tiny_model_dir):
    path = tmp_path / "run.trace"
    monkeypatch.setenv(trace.TRACE_VARIABLE, str(path))
    monkeypatch.setattr(trace, "_seen", type(trace._seen)())
    argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah(max_new_tokens=2)", "--lengths", "256"]
    argv += ["--samples", "2", "--measure-plane", "none", "--no-progress", "--out", str(tmp_path / "run")]
    code, _, err = invoke(monkeypatch, capsys, argv)
    assert code == 0, err
    per_sample = ["prefill", "store-write", "sample-done"]
    assert [name for name, _, _ in trace.read(path)] == ["model-load", *per_sample, *per_sample, "report"]

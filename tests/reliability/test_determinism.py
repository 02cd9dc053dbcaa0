"""The same command twice gives byte-identical samples and, with greedy decoding, identical predictions."""

from __future__ import annotations

import sqlite3

from .test_bad_input import invoke


def _rows(run_dir):
    with sqlite3.connect(run_dir / "run.db") as db:
        samples = db.execute("SELECT id, body FROM samples ORDER BY id").fetchall()
        predictions = db.execute("SELECT key, prediction, output_tokens FROM results ORDER BY key").fetchall()
    return samples, predictions


def test_the_same_command_twice_gives_the_same_bytes(tmp_path, monkeypatch, capsys, tiny_model_dir):
    argv = [
        "run",
        "--model",
        f"hf:{tiny_model_dir}",
        "--tasks",
        "niah(max_new_tokens=6),variable_tracking(max_new_tokens=6)",
    ]
    argv += ["--lengths", "384", "--samples", "2", "--no-progress", "--no-report", "--measure-plane", "none"]
    results = []
    for attempt in ("first", "second"):
        # A fresh sample cache each time: the second run builds its samples again rather than reading them.
        monkeypatch.setenv("LONGSCOPE_CACHE", str(tmp_path / f"cache-{attempt}"))
        code, _, err = invoke(monkeypatch, capsys, [*argv, "--out", str(tmp_path / attempt)])
        assert code == 0, err
        results.append(_rows(tmp_path / attempt))
    (samples_a, predictions_a), (samples_b, predictions_b) = results
    assert len(samples_a) == 4 and samples_a == samples_b
    assert len(predictions_a) == 4 and predictions_a == predictions_b

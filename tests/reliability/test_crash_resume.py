"""Crash and resume: the real command killed with -9 at each named point of a run (model load, prefill, a store
write inside its transaction, between samples, the report) and resumed each time loses nothing, duplicates
nothing, and leaves a database that passes its integrity check. The suite runs 5 kills, one per point, to keep
within its time; `bench/reliability.py --trials 20` runs the 20 of the figures in bench/results/reliability.json
with the same code."""

from __future__ import annotations

import pytest

from longscope import trace

from .figures import crash_and_resume


@pytest.mark.slow  # 5 kills of the real command and 2 whole runs
def test_kill_9_at_each_named_point_loses_and_duplicates_nothing(tmp_path, tiny_model_dir):
    figures = crash_and_resume(
        f"hf:{tiny_model_dir}", tmp_path, trials=5, seed=25, env={"LONGSCOPE_CACHE": str(tmp_path / "cache")}
    )
    assert figures["planned_rows"] == 12 and figures["resume_exit_code"] == 0
    # Every kill hit a live process standing at the point it was aimed at, with the rows that point implies.
    assert [kill["point"] for kill in figures["each_kill"]] == list(trace.POINTS)
    assert all(kill["landed"] for kill in figures["each_kill"]), figures["each_kill"]
    for point, counts in figures["by_point"].items():
        landed = (counts["killed_while_running"], counts["landed_at_aimed_point"])
        assert counts["trials"] == 1 and landed == (1, 1), point
        assert counts["rows_at_kill_as_expected"] == 1, (point, figures["each_kill"])
        assert counts["partial_reports"] == 0, point
    assert figures["lost_rows"] == 0 and figures["duplicated_rows"] == 0 and figures["unplanned_rows"] == 0
    assert figures["integrity_check_failures"] == 0

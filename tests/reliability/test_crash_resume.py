"""Crash and resume: the real command killed with -9 at random moments and resumed each time loses nothing,
duplicates nothing, and leaves a database that passes its integrity check. The suite runs 5 kills to keep within
its time; `bench/reliability.py` runs the 20 of the figures in bench/results/reliability.json with the same code."""

from __future__ import annotations

import pytest

from .figures import crash_and_resume


@pytest.mark.slow  # 5 kills of the real command and 2+ whole runs
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path, tiny_model_dir):
    figures = crash_and_resume(
        f"hf:{tiny_model_dir}", tmp_path, trials=5, seed=25, env={"LONGSCOPE_CACHE": str(tmp_path / "cache")}
    )
    assert figures["planned_rows"] == 12 and figures["resume_exit_code"] == 0
    assert figures["lost_rows"] == 0 and figures["duplicated_rows"] == 0 and figures["unplanned_rows"] == 0
    assert figures["integrity_check_failures"] == 0
    assert figures["killed_while_running"] >= 2  # the kills really interrupted runs

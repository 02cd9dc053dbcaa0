"""Crash and resume: the real command killed with -9 at 20 random moments and resumed each time loses nothing,
duplicates nothing, and leaves a database that passes its integrity check."""

from __future__ import annotations

import pytest

from .figures import crash_and_resume, record


@pytest.mark.slow  # 20 kills of the real command and 2+ whole runs: ~2 min on a quiet machine
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path, tiny_model_dir):
    figures = crash_and_resume(
        f"hf:{tiny_model_dir}", tmp_path, trials=20, seed=25, env={"LONGSCOPE_CACHE": str(tmp_path / "cache")}
    )
    record("crash_and_resume", {**figures, "model": "tiny random llama (hf:DIR)"})
    assert figures["planned_rows"] == 12 and figures["resume_exit_code"] == 0
    assert figures["lost_rows"] == 0 and figures["duplicated_rows"] == 0 and figures["unplanned_rows"] == 0
    assert figures["integrity_check_failures"] == 0
    assert figures["killed_while_running"] >= 10  # the kills really interrupted runs

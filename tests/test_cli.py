"""The command line as a user meets it: runs, summaries, resume after a kill, and one-line errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import run_cli

from longscope.store import DB_NAME


def assert_one_line_error(result, fragment: str):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in " ".join(result.stderr.split()), result.stderr


def test_run_then_show_prints_the_summary(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    args = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah,niah_multikey(haystack=noise)",
            "--lengths", "512,1k", "--depths", "0,1", "--out", str(out), "--no-progress"]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "niah_multikey(haystack=noise)" in first.stdout and "1k" in first.stdout
    assert "Effective context length" in first.stdout
    with sqlite3.connect(out / DB_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0] == 8
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    shown = run_cli("show", str(out))
    assert shown.returncode == 0 and "niah_multikey(haystack=noise)" in shown.stdout
    assert "n=2" in shown.stdout and "[" in shown.stdout  # every cell carries n and its interval


def test_tasks_lists_every_task_with_its_plane_coordinates():
    result = run_cli("tasks")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in ("niah", "niah_multikey", "niah_multivalue", "niah_multiquery", "diffusion", "scope"):
        assert name in text


def test_kill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    args = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah,niah_multivalue", "--lengths", "1k,2k",
            "--depths", "0,0.5,1", "--samples", "6", "--out", str(out), "--no-progress"]  # fmt: skip
    planned = 2 * 2 * 3 * 6
    process = subprocess.Popen(
        [sys.executable, "-c", "from longscope.cli import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    done = 0
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        if (out / DB_NAME).exists():
            try:
                with sqlite3.connect(out / DB_NAME, timeout=1) as db:
                    done = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= 3:
                break
    process.send_signal(signal.SIGKILL)
    process.wait()
    with sqlite3.connect(out / DB_NAME) as db:
        after_kill = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 3 <= after_kill < planned, "the kill must land mid-run for this test to mean anything"

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(out / DB_NAME) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM results")]
        sample_ids = [row[0] for row in db.execute("SELECT sample_id FROM results")]
    assert len(keys) == planned and len(set(keys)) == planned and len(set(sample_ids)) == planned


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "--tasks", "needle_party"], "unknown task 'needle_party'; known tasks:"),
        (["run", "--model", "gpt5"], "unknown model 'gpt5'; give smollm2"),
        (["run", "--lengths", "4q"], "cannot read length '4q'"),
        (["run", "--depths", "1.5"], "depth 1.5 is outside [0, 1]"),
        (["run", "--tasks", "niah(num_keys=x)"], "parameter num_keys"),
        (["run", "--model", "hf:/nonexistent/model"], "cannot load model '/nonexistent/model'"),
        (["show", "/nonexistent/run"], "does not exist"),
        (["run", "--threshold", "150"], "--threshold is a score from 0 to 100 (got 150)"),
        (["run", "--out", ""], "--out is empty"),
        # Flags typed wrong are one line too, not a usage box.
        (["run", "--samples", "abc"], "Invalid value for '--samples'"),
        (["run", "--threshold", "abc"], "Invalid value for '--threshold'"),
        (["run", "--bogus"], "No such option: --bogus"),
        (["frob"], "No such command 'frob'"),
        (
            ["run", "--tasks", "niah(max_new_tokens=0)", "--model", "hf:/nonexistent"],
            "max_new_tokens must be",
        ),
        # The user's own text is printed as written, never read as markup.
        (["run", "--tasks", "nope[/x]"], "cannot read task 'nope[/x]'"),
        (["show", "/nonexistent/[/red]run"], "/nonexistent/[/red]run does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, fragment):
    assert_one_line_error(run_cli(*args), fragment)


def test_length_above_the_window_and_unwritable_out(tmp_path, tiny_model_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(
        "run", "--model", f"hf:{tiny_model_dir}", "--lengths", "1k,16k", "--out", str(tmp_path / "r")
    )
    assert_one_line_error(result, "length 16384 is above the context window")
    assert not (tmp_path / "r" / DB_NAME).exists()
    result = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--out", str(blocker / "run"))
    assert_one_line_error(result, "cannot write to output directory")
    assert not (blocker.parent / "r").exists()


def test_corrupt_and_foreign_run_databases_are_left_untouched(tmp_path, tiny_model_dir):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / DB_NAME).write_bytes(b"this is not a database at all" * 20)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / DB_NAME) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    for folder, fragment in ((corrupt, "corrupt or not an SQLite database"), (foreign, "did not write")):
        before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
        assert_one_line_error(
            run_cli("run", "--model", f"hf:{tiny_model_dir}", "--out", str(folder)), fragment
        )
        assert_one_line_error(run_cli("show", str(folder)), fragment)
        assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before


def test_bad_flag_value_exits_2_without_traceback():
    result = run_cli("run", "--samples", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--samples" in result.stderr

"""Published benchmarks from the command line: a run over fixture files with its report, and one-line refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def test_a_benchmark_run_from_local_files_counts_bad_records_and_reports_per_benchmark(
    tmp_path, tiny_model_dir
):
    out = tmp_path / "run"
    done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", "longbench:hotpotqa,longbench:trec",
                   "--data", str(FIXTURES / "longbench"), "--out", str(out), "--no-progress", env=OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "run.db") as db:
        rows = db.execute("SELECT task, status, error FROM results").fetchall()
    ok = [r for r in rows if r[1] == "ok"]
    skipped = [r for r in rows if r[1] == "skipped"]
    # three records in each fixture file, one more line of hotpotqa.jsonl deliberately broken
    assert len(ok) == 6 and len(skipped) == 1
    assert skipped[0][2].startswith("invalid record hotpotqa.jsonl:")
    assert "skipped" in done.stdout
    page = (out / "report.html").read_text()
    assert 'id="benchmarks"' in page and "longbench:hotpotqa" in page and "average over subsets" in page


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--tasks", "longbench:nosuch", "--data", "."], "unknown subset 'nosuch'"),
        (["--tasks", "nosuchbench:x"], "unknown task 'nosuchbench'"),
        (["--tasks", "longbench:hotpotqa", "--data", "/nonexistent/dir"], "/nonexistent/dir"),
        (
            ["--tasks", "longbench:hotpotqa", "--data", str(FIXTURES / "longbench_v2")],
            "holds none of the files",
        ),
        (["--tasks", "longbench:hotpotqa"], "pass --data"),
        (["--tasks", "niah", "--data", str(FIXTURES / "longbench")], "--data gives records"),
    ],
)
def test_bad_benchmark_input_is_one_line_and_exit_2(tmp_path, tiny_model_dir, args, fragment):
    out = tmp_path / "run"
    done = run_cli(
        "run", "--model", f"hf:{tiny_model_dir}", "--out", str(out), "--no-progress", *args, env=OFFLINE
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()

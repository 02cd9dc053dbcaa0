"""Suites: built-in names, user files in TOML/YAML/JSON, and one-line errors for bad files."""

from __future__ import annotations

import pytest
from conftest import run_cli

from longscope.core import UsageError
from longscope.suites import BUILTIN, load_suite
from longscope.tasks import TASKS, make_task


def test_builtin_suites_name_only_tasks_that_exist():
    for suite in [*BUILTIN.values(), load_suite("plane", list(TASKS))]:
        for spec in suite.tasks:
            make_task(spec)  # raises UsageError on an unknown task or parameter
    synthetic = {name for name, cls in TASKS.items() if not (cls.published or cls.reads_data)}
    assert set(load_suite("plane", list(TASKS)).tasks) == synthetic
    assert {"niah", "threading", "db_count"} <= synthetic and "longbench" not in synthetic


@pytest.mark.parametrize(
    "name,text",
    [
        (
            "mine.toml",
            'tasks = ["niah(haystack=noise)", "niah_multikey"]\nlengths = ["1k", "2k"]\nsamples = 2\n',
        ),
        ("mine.yaml", "tasks:\n  - niah(haystack=noise)\n  - niah_multikey\nlengths: [1k, 2k]\nsamples: 2\n"),
        (
            "mine.json",
            '{"tasks": ["niah(haystack=noise)", "niah_multikey"], "lengths": ["1k", "2k"], "samples": 2}',
        ),
    ],
)
def test_user_suite_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    suite = load_suite(str(path), list(TASKS))
    assert suite.tasks == ("niah(haystack=noise)", "niah_multikey")
    assert suite.lengths == ("1k", "2k") and suite.samples == 2 and suite.name == "mine"


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("bad.toml", "tasks = [", "cannot read suite file"),
        ("bad.yaml", "tasks: [niah", "cannot read suite file"),
        ("empty.toml", "tasks = []", "non-empty list"),
        ("extra.toml", 'tasks = ["niah"]\ncolour = "red"', "unknown key 'colour'"),
        ("bad.txt", "tasks", "must end in .toml"),
    ],
)
def test_bad_suite_files_are_one_clear_error(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_suite(str(path), list(TASKS))


def test_unknown_suite_lists_the_builtin_ones():
    with pytest.raises(UsageError, match="built-in suites: quick"):
        load_suite("nope", list(TASKS))


def test_cli_runs_a_suite_file_and_breaks_scores_down(tmp_path, tiny_model_dir):
    path = tmp_path / "suite.toml"
    path.write_text('tasks = ["niah(haystack=noise)"]\nlengths = ["512"]\ndepths = [0.0, 1.0]\n')
    out = tmp_path / "run"
    result = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--suite", str(path), "--out", str(out),
                     "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "niah(haystack=noise)" in result.stdout
    shown = run_cli("show", str(out), "--by", "depth")
    assert shown.returncode == 0 and "0.0" in shown.stdout and "1.0" in shown.stdout
    plane = run_cli("tasks", "--plane")
    assert plane.returncode == 0 and "niah_multikey" in plane.stdout

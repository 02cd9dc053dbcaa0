"""The bad-input catalogue: every case ends in one line, exit code 2, no traceback, and nothing partial written.

Most cases run the CLI in this process (``cli.main`` with its own error handling) for speed; a handful run the
real command in a subprocess, as a user would.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from longscope import backends, cli, runner
from longscope.store import APPLICATION_ID, DB_NAME

FIXTURES = Path(__file__).parent.parent / "fixtures"
HOTPOT = FIXTURES / "longbench" / "hotpotqa.jsonl"


_load_once = functools.cache(backends.resolve)


@pytest.fixture(autouse=True)
def one_model_for_the_catalogue(monkeypatch):
    """The cases that get as far as the model share one load of it: each is refused before it runs anything,
    so none can change the model another sees."""
    monkeypatch.setattr(runner, "resolve", _load_once)


def invoke(monkeypatch, capsys, argv: list[str]) -> tuple[int, str, str]:
    """``longscope ARGV`` in this process: its exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["longscope", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes: what "nothing written" is checked against."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_one_line_refusal(code: int, out: str, err: str, *, contains: str = "") -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert contains.lower() in lines[0].lower(), lines[0]


# --- command-line flags: refused before any model loads ---------------------------------------------------

BIG = "100000000000000000000"
FLAG_CASES = [
    (["--samples", BIG], "--samples"),
    (["--samples", "0"], "--samples"),
    (["--samples", "-3"], "--samples"),
    (["--samples", "abc"], "--samples"),
    (["--samples", "2000000"], "--samples"),
    (["--seed", BIG], "--seed"),
    (["--seed", "9223372036854775807", "--samples", "2"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["--retries", BIG], "--retries"),
    (["--retries", "-1"], "--retries"),
    (["--retries", "5000"], "--retries"),
    (["--limit", "0"], "--limit"),
    (["--limit", BIG], "--limit"),
    (["--limit", "abc"], "--limit"),
    (["--threshold", "abc"], "--threshold"),
    (["--threshold", "150"], "--threshold"),
    (["--threshold", "nan"], "--threshold"),
    (["--threshold", "-1"], "--threshold"),
    (["--depths", "nan"], "depth"),
    (["--depths", "2"], "depth"),
    (["--depths", "abc"], "depth"),
    (["--lengths", "abc"], "length"),
    (["--lengths", "0"], "length"),
    (["--tasks", ""], "task"),
    (["--tasks", "no_such_task"], "no_such_task"),
    (["--tasks", "niah("], "niah"),
    (["--tasks", "niah(bogus=1)"], "bogus"),
    (["--tasks", "niah(max_new_tokens=0)"], "max_new_tokens"),
    (["--tasks", "[/x]"], "[/x]"),
    (["--methods", "no_such_method"], "no_such_method"),
    (["--methods", "snapkv:2"], "snapkv"),
    (["--mode", "sideways"], "mode"),
    (["--truncation", "sideways"], "truncation"),
    (["--out", ""], "--out"),
    (["--executor", "elsewhere"], "executor"),
    (["--ray-workers", "0"], "--ray-workers"),
    (["--ray-workers", "abc"], "--ray-workers"),
    (["--model", "openai:http://127.0.0.1:9/v1"], "no model"),
    (["--model", "openai:ftp://127.0.0.1:9/v1#m"], "http"),
    (["--model", f"openai:http://127.0.0.1:9/v1#m?concurrency={BIG}"], "concurrency"),
    (["--model", "openai:http://127.0.0.1:9/v1#m?timeout=inf"], "timeout"),
    (["--model", "openai:http://127.0.0.1:9/v1#m?backoff=nan"], "backoff"),
    (["--model", "openai:http://127.0.0.1:9/v1#m?bogus=1"], "bogus"),
    (["--model", "openai:http://127.0.0.1:9/v1#m"], "cannot reach"),
    (["--model", "no_such_scheme:x"], "no_such_scheme"),
    (["--measure-plane", "psychic"], "psychic"),
    (["--no-such-flag"], "no-such-flag"),
    (["--data", str(HOTPOT)], "--data"),
    # A benchmark whose prompts are built in reads no --data: the file would be silently ignored.
    (
        ["--tasks", "checklist_writing", "--judge", "openai:http://127.0.0.1:9/v1#j", "--data", str(HOTPOT)],
        "--data",
    ),
]


@pytest.mark.parametrize("flags, contains", FLAG_CASES, ids=[" ".join(c[0])[:60] for c in FLAG_CASES])
def test_a_bad_flag_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, flags, contains):
    out_dir = tmp_path / "run"
    argv = ["run", "--tasks", "niah", "--lengths", "512", "--no-progress", "--out", str(out_dir), *flags]
    if flags[:1] == ["--out"]:
        argv = ["run", "--tasks", "niah", "--lengths", "512", "--no-progress", *flags]
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains=contains)
    assert not out_dir.exists()


@pytest.mark.parametrize(
    "argv, contains",
    [
        (["show", "{tmp}/missing"], "does not exist"),
        (["show", "{tmp}", "--threshold", "abc"], "--threshold"),
        (["report", "{tmp}", "--threshold", "500"], ""),
        (["show", "{tmp}/res[/red]"], "res[/red]"),
        (["tasks", "no_such_task"], "no_such_task"),
        (["methods", "no_such_method"], "no_such_method"),
    ],
)
def test_other_commands_refuse_in_one_line(tmp_path, monkeypatch, capsys, argv, contains):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains=contains)
    assert snapshot(tmp_path) == {}


# --- task parameters that could never fit: refused up front, quickly, once the tokenizer is known ------------

COUNT_CASES = [
    "niah_multikey(num_keys=1000000000)",
    f"niah(questions={BIG})",
    "niah_multivalue(num_values=1000000000)",
    "instruction_exam(min_items=1000000000)",
    "count_occurrences(max_count=1000000000)",
    "reorder(segments=1000000000)",
    "variable_tracking(hops=1000000000)",
]


@pytest.mark.parametrize("spec", COUNT_CASES)
def test_a_count_that_cannot_fit_is_refused_before_any_sample(
    tmp_path, monkeypatch, capsys, tiny_model_dir, spec
):
    out_dir = tmp_path / "run"
    argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", spec, "--lengths", "512"]
    code, out, err = invoke(monkeypatch, capsys, [*argv, "--no-progress", "--out", str(out_dir)])
    assert_one_line_refusal(code, out, err, contains="cannot fit")
    assert not out_dir.exists()


# --- suite files ---------------------------------------------------------------------------------------------

SUITE_CASES = [
    ("bad.yaml", b"tasks:\n  - niah\nlengths: [1k\n", "line 4"),
    ("tab.yaml", b"tasks: [niah]\n\tlengths: [1k]\n", "line 2"),
    ("bad.toml", b'tasks = ["niah"\nlengths = 3\n', "line 2"),
    ("bad.json", b'{"tasks": [1,\n', "line 2"),
    ("bool.toml", b'tasks = ["niah"]\nsamples = true\n', "samples"),
    ("huge.toml", b'tasks = ["niah"]\nsamples = 100000000000000000000\n', "samples"),
    ("notlist.toml", b'tasks = "niah"\n', "tasks"),
    ("unknown.toml", b'tasks = ["niah"]\nsurprise = 1\n', "surprise"),
    ("empty.yaml", b"", "mapping"),
    ("latin1.yaml", b"tasks: [niah]\nname: caf\xe9\n", "cannot read"),
    ("nul.toml", b'tasks = ["niah\x00"]\n', "suite"),
    ("depths.yaml", b"tasks: [niah]\ndepths: [deep]\n", "depths"),
    ("suite.txt", b"tasks: [niah]\n", ".toml"),
]


@pytest.mark.parametrize("name, content, contains", SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_a_bad_suite_file_is_one_line_with_where(tmp_path, monkeypatch, capsys, name, content, contains):
    suite = tmp_path / name
    suite.write_bytes(content)
    out_dir = tmp_path / "run"
    argv = ["run", "--suite", str(suite), "--no-progress", "--out", str(out_dir)]
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains=contains)
    assert not out_dir.exists()


# --- dataset files -----------------------------------------------------------------------------------------


def _good_lines() -> list[str]:
    return [line for line in HOTPOT.read_text().splitlines() if line.strip() and _parses(line)]


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


DATA_CASES = [
    ("empty.jsonl", b"", "holds no records"),
    ("blank.jsonl", b"\n\n  \n", "holds no records"),
    ("mistyped.jsonl", b'{"input": 1, "context": 2, "answers": 3}\n' * 3, "none of its 3 records fits"),
    ("truncated.json", b'[{"input": "q", "context": "c", "answ', "not valid JSON"),
    ("csv.jsonl", b"input,context\nq,c\n", "no readable JSON"),
    ("latin1.json", b'[{"input": "caf\xe9"}]', "cannot read"),
    ("nul.jsonl", b"\x00\x00\x00\n", "no readable JSON"),
    ("wrong.csv", b"a,b\n", "must be a"),
    ("scalar.json", b"42", "must hold a list"),
    ("v2.json", None, "none of its"),  # LongBench v2's file given to LongBench
]


@pytest.mark.parametrize("name, content, contains", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_a_bad_data_file_is_one_line_and_nothing_runs(
    tmp_path, monkeypatch, capsys, tiny_model_dir, name, content, contains
):
    data = tmp_path / name
    if content is None:
        data.write_bytes((FIXTURES / "longbench_v2" / "data.json").read_bytes())
    else:
        data.write_bytes(content)
    out_dir = tmp_path / "run"
    argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "longbench:hotpotqa", "--data", str(data)]
    code, out, err = invoke(monkeypatch, capsys, [*argv, "--no-progress", "--out", str(out_dir)])
    assert_one_line_refusal(code, out, err, contains=contains)
    assert not out_dir.exists()


def test_a_missing_data_path_is_one_line(tmp_path, monkeypatch, capsys, tiny_model_dir):
    argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "longbench:hotpotqa"]
    argv += ["--data", str(tmp_path / "nowhere.jsonl"), "--out", str(tmp_path / "run")]
    assert_one_line_refusal(*invoke(monkeypatch, capsys, argv), contains="no such file")
    assert not (tmp_path / "run").exists()


# --- run directories ---------------------------------------------------------------------------------------


def _longscope_db(path: Path, schema: str) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(schema)
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")


RUN_DIR_CASES = {
    "corrupt": lambda d: (d / DB_NAME).write_bytes(b"\x13" * 4096),
    "empty_file": lambda d: (d / DB_NAME).write_bytes(b""),
    "foreign": lambda d: sqlite3.connect(d / DB_NAME).execute("CREATE TABLE t (x)").connection.commit(),
    "our_id_wrong_schema": lambda d: _longscope_db(
        d / DB_NAME, "CREATE TABLE meta (k TEXT); CREATE TABLE results (x INTEGER);"
    ),
    "our_id_newer_schema": lambda d: _longscope_db(
        d / DB_NAME,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); "
        "CREATE TABLE results (key TEXT, sample_id TEXT, status TEXT, finished_at REAL);"
        "INSERT INTO meta VALUES ('schema', '99');",
    ),
    "db_is_a_directory": lambda d: (d / DB_NAME).mkdir(),
}


@pytest.mark.parametrize("case", list(RUN_DIR_CASES))
@pytest.mark.parametrize("command", ["run", "show", "report"])
def test_a_bad_run_directory_is_one_line_and_left_as_it_was(
    tmp_path, monkeypatch, capsys, tiny_model_dir, case, command
):
    RUN_DIR_CASES[case](tmp_path)
    before = snapshot(tmp_path)
    argv = [command, str(tmp_path)] if command != "run" else []
    if command == "run":
        argv = ["run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah", "--lengths", "512"]
        argv += ["--no-progress", "--out", str(tmp_path)]
    code, out, err = invoke(monkeypatch, capsys, argv)
    assert_one_line_refusal(code, out, err)
    assert snapshot(tmp_path) == before  # not even a -shm or -wal beside it


def test_a_truncated_wal_database_gets_no_shm_or_wal_beside_it(tmp_path, monkeypatch, capsys):
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("CREATE TABLE filler (x TEXT)")
        db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 200)
    db.close()
    path = tmp_path / DB_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 100])
    code, out, err = invoke(monkeypatch, capsys, ["show", str(tmp_path)])
    assert_one_line_refusal(code, out, err, contains="corrupt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_the_real_command_refuses_in_one_line_too(tmp_path):
    """A few of the cases above, through a fresh process as a user runs them: an overflow, a typer parse error
    and a missing run, none of which needs more than the CLI's own imports."""
    for argv in (
        ["run", "--samples", BIG, "--out", str(tmp_path / "a")],
        ["run", "--threshold", "abc", "--out", str(tmp_path / "b")],
        ["show", str(tmp_path / "missing")],
    ):
        done = run_cli(*argv, timeout=120)
        assert_one_line_refusal(done.returncode, done.stdout, done.stderr)
    assert sorted(tmp_path.iterdir()) == []


def test_an_unreachable_server_with_a_key_in_its_url_is_one_line_without_the_key(
    tmp_path, monkeypatch, capsys
):
    # In this process: the method registry this check passes through imports every KV method (torch, kvpress),
    # which a fresh process would pay for again.
    model = "openai:http://u:SECRETKEY123@127.0.0.1:9/v1#m"
    code, out, err = invoke(monkeypatch, capsys, ["run", "--model", model, "--out", str(tmp_path / "c")])
    assert_one_line_refusal(code, out, err, contains="cannot reach")
    assert "SECRETKEY123" not in out + err
    assert sorted(tmp_path.iterdir()) == []

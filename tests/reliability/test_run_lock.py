"""Two runs on one run directory: the second is refused in one line while the first lives, whatever its model,
and the lock goes with the process that held it, even under kill -9."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fault_proxy import FaultProxy

from longscope.config import RunConfig
from longscope.core import UsageError
from longscope.run_lock import hold
from longscope.runner import run
from longscope.store import DB_NAME

from .fake_openai import FakeOpenAI
from .test_bad_input import assert_one_line_refusal, invoke

HOLDER = """
import sys, time
from pathlib import Path
from longscope.run_lock import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # two runs, one held for seconds on purpose; about 25 s
def test_a_second_run_is_refused_while_the_first_lives(tmp_path, monkeypatch, capsys, tiny_model_dir):
    server = FakeOpenAI()
    proxy = FaultProxy(server.url, schedule=["stall:6"])  # holds the first run's first answer for a while
    out_dir = tmp_path / "run"
    model = f"openai:{proxy.url}/v1#fake?context_window=2048&timeout=10&backoff=0.01"
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=8)"], lengths=[256], samples=2)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            run(config, out_dir, show_progress=False, plane_retrievers=())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        deadline = time.monotonic() + 240
        while not proxy.generation_log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.generation_log(), "the first run never reached the server"
        common = [
            "--tasks",
            "niah(max_new_tokens=8)",
            "--lengths",
            "256",
            "--no-progress",
            "--out",
            str(out_dir),
        ]
        for other_model in (model, f"hf:{tiny_model_dir}"):  # the same command, and another model
            code, out, err = invoke(monkeypatch, capsys, ["run", "--model", other_model, *common])
            assert_one_line_refusal(code, out, err, contains="another longscope run is writing")
    finally:
        thread.join(timeout=120)
        proxy.close()
        server.close()
    assert not errors, errors
    with sqlite3.connect(out_dir / DB_NAME) as db:
        rows = db.execute("SELECT key, status, model FROM results").fetchall()
    assert len(rows) == 2 and len({key for key, _, _ in rows}) == 2
    assert {(status, model_name) for _, status, model_name in rows} == {("ok", "fake")}


def test_the_lock_dies_with_its_process_even_under_kill_9(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="another longscope run is writing into"), hold(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with hold(tmp_path):  # free again at once: no stale lock file to clean up
        assert list(tmp_path.iterdir()) == []


def test_a_refused_start_leaves_no_directory_behind(tmp_path):
    target = tmp_path / "a" / "b"
    with pytest.raises(UsageError), hold(target):
        raise UsageError("refused before anything was written")
    assert list(tmp_path.iterdir()) == []

"""The Ray executor: a sharded run gives the rows a local run gives, a killed worker loses nothing, a run resumes
across executors, and bad input (no Ray, an unreachable address, a wrong endpoint) is one line before any
sample. The Ray tests start a local cluster of two CPUs on this machine and a tiny saved Llama."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import free_port

from longscope.backends import resolve
from longscope.core import UsageError
from longscope.executors.endpoints import endpoint_uris
from longscope.executors.ray import RayExecutor, _Slot, make_executor
from longscope.runner import RunConfig, run
from longscope.store import DB_NAME

CONFIG = dict(tasks=["niah", "niah_multikey"], lengths=[512, 1024], depths=[0.0, 1.0], samples=1)
COMPARED = "key, status, prediction, score, input_tokens, output_tokens, realised_tokens, attempts, error"


def stored(run_dir) -> list[tuple]:
    with sqlite3.connect(run_dir / DB_NAME) as db:
        return db.execute(f"SELECT {COMPARED} FROM results ORDER BY key").fetchall()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip(
        "ray", reason="ray is not installed (pip install 'longscope[ray]'; make test has it)"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_rows(tiny_model_dir, tmp_path_factory):
    """The reference: the same plan on the local executor."""
    folder = tmp_path_factory.mktemp("local-run")
    config = RunConfig(model=f"hf:{tiny_model_dir}", **CONFIG)
    run(config, folder, show_progress=False)
    return stored(folder)


class Watching:
    """Wraps an executor: counts the items handed back, and calls ``after_first`` after the first one."""

    def __init__(self, inner, after_first=None):
        self.inner = inner
        self.after_first = after_first
        self.handed: Counter[str] = Counter()

    def run(self, work, backend, *, retries, attempts, on_done):
        def hook(item, results):
            on_done(item, results)
            self.handed[item.item.key()] += 1
            if self.after_first is not None and sum(self.handed.values()) == 1:
                self.after_first()

        self.inner.run(work, backend, retries=retries, attempts=attempts, on_done=hook)


def test_a_sharded_run_stores_the_rows_of_a_local_run(ray_cluster, tiny_model_dir, tmp_path, local_rows):
    model = f"hf:{tiny_model_dir}"
    executor = RayExecutor(model, workers=2)
    executor.start()  # both actors built their backends before the run: the run uses them
    assert len({slot.pid for slot in executor.slots}) == 2
    run(RunConfig(model=model, **CONFIG), tmp_path, executor=executor, show_progress=False)
    assert len(local_rows) == 8 and all(row[1] == "ok" for row in local_rows)
    assert stored(tmp_path) == local_rows
    # Both workers answered a share, and no item was sent twice.
    assert len(executor.answered) == 2 and min(executor.answered) >= 1 and sum(executor.answered) == 8
    assert executor.requeued == 0
    assert not executor.slots  # the actors are gone after the run


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(ray_cluster, tiny_model_dir, tmp_path, local_rows):
    model = f"hf:{tiny_model_dir}"
    executor = RayExecutor(model, workers=2, wait_for_all=True)
    killed = []

    def kill_a_busy_worker():
        victim = next(slot for slot in executor.slots if slot.outstanding)
        killed.append(len(victim.outstanding))
        os.kill(victim.pid, signal.SIGKILL)

    watching = Watching(executor, after_first=kill_a_busy_worker)
    run(RunConfig(model=model, **CONFIG), tmp_path, executor=watching, show_progress=False)
    assert killed and killed[0] >= 1
    # What the dead worker held went back to the queue (plus any item sent to it before its death was seen).
    assert executor.requeued >= killed[0]
    # A fresh actor took the dead one's place: three actors answered, and every item exactly once.
    assert executor.replaced == 1 and len(executor.answered) == 3 and sum(executor.answered) == 8
    assert set(watching.handed.values()) == {1} and len(watching.handed) == 8
    assert stored(tmp_path) == local_rows


@pytest.mark.slow
def test_an_actor_that_cannot_start_is_replaced_once_then_the_run_stops(ray_cluster, tmp_path):
    """A backend that never loads must not loop: each original actor is replaced once, then the run ends with
    the last death's reason and nothing was sent."""
    executor = RayExecutor(f"hf:{tmp_path / 'no-such-model'}", workers=2)
    with pytest.raises(RuntimeError, match="every Ray worker died"):
        executor.run([object()], None, retries=0, attempts={}, on_done=lambda *_: None)
    assert executor.replaced == 2 and executor.answered == [0, 0, 0, 0]


def test_joining_a_cluster_ships_this_longscope_to_its_nodes():
    import longscope
    from longscope.executors.ray import shipped_code

    (folder,) = shipped_code()["py_modules"]
    assert os.path.samefile(folder, os.path.dirname(longscope.__file__))
    assert os.path.isfile(os.path.join(folder, "executors", "ray.py"))


class Interrupting(Watching):
    def __init__(self, inner, after: int):
        super().__init__(inner)
        self.after = after

    def run(self, work, backend, *, retries, attempts, on_done):
        def hook(item, results):
            on_done(item, results)
            self.handed[item.item.key()] += 1
            if sum(self.handed.values()) == self.after:
                raise KeyboardInterrupt

        self.inner.run(work, backend, retries=retries, attempts=attempts, on_done=hook)


@pytest.mark.slow
def test_a_run_started_on_ray_resumes_locally_and_the_other_way(
    ray_cluster, tiny_model_dir, tmp_path, local_rows
):
    model = f"hf:{tiny_model_dir}"
    config = RunConfig(model=model, **CONFIG)
    first = tmp_path / "ray-then-local"
    with pytest.raises(KeyboardInterrupt):
        run(
            config,
            first,
            executor=Interrupting(RayExecutor(model, workers=2, wait_for_all=True), after=3),
            show_progress=False,
        )
    assert 3 <= len(stored(first)) < 8
    run(config, first, show_progress=False)
    assert stored(first) == local_rows

    second = tmp_path / "local-then-ray"
    with pytest.raises(KeyboardInterrupt):
        run(
            config,
            second,
            backend=resolve(model),
            executor=Interrupting(LocalOnce(), after=3),
            show_progress=False,
        )
    assert len(stored(second)) == 3
    executor = RayExecutor(model, workers=2, wait_for_all=True)
    run(config, second, executor=executor, show_progress=False)
    assert sum(executor.answered) == 5  # only what the local run left
    assert stored(second) == local_rows


class LocalOnce:
    def run(self, work, backend, **kwargs):
        from longscope.executors.local import LocalExecutor

        LocalExecutor().run(work, backend, **kwargs)


# -- the dispatcher, without Ray ------------------------------------------------------------------------------


class FakeHandle:
    def __init__(self, name):
        self.name = name
        self.sent = []
        self.answer = SimpleNamespace(remote=self._remote)

    def _remote(self, item, retries, attempts):
        self.sent.append((item, attempts))
        return object()


def asked(text):
    return SimpleNamespace(messages=[{"role": "user", "content": text}])


def test_each_item_goes_to_the_endpoint_with_the_fewest_outstanding():
    from collections import deque

    executor = RayExecutor("openai:http://x/v1#m")
    busy, idle = FakeHandle("busy"), FakeHandle("idle")
    executor.slots = [_Slot(busy, depth=4, pid=1), _Slot(idle, depth=4, pid=2), _Slot(FakeHandle("x"), 4)]
    executor.slots[0].outstanding = {object(): None for _ in range(3)}
    key = SimpleNamespace(
        key=lambda turn: f"k|t{turn}", request=lambda sample, turn: asked(f"prompt {sample}")
    )
    items = deque(SimpleNamespace(item=key, sample=n, turns=1, n=n) for n in range(5))
    owner = {}
    executor._fill(items, owner, retries=1, attempts={"k|t0": 2, "other": 5})
    # The idle endpoint takes three before the busy one gets its fourth (a tie goes to the first listed), then
    # the last; the worker still loading its backend gets none.
    assert [item.n for item, _ in idle.sent] == [0, 1, 2, 4]
    assert [item.n for item, _ in busy.sent] == [3]
    assert not items and len(owner) == 5
    assert idle.sent[0][1] == {"k|t0": 2}  # only the item's own attempts travel


# -- bad input: one line, before any sample -----------------------------------------------------------------


def test_ray_not_installed_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install 'longscope\[ray\]'"):
        make_executor("ray", None, [], "hf:whatever")


def test_unknown_executor_and_ray_options_without_ray():
    with pytest.raises(UsageError, match="unknown executor 'dask'"):
        make_executor("dask", None, [], "smollm2")
    with pytest.raises(UsageError, match="need --executor ray"):
        make_executor("local", None, ["http://127.0.0.1:1/v1"], "smollm2")
    assert type(make_executor("local", None, [], "smollm2")).__name__ == "LocalExecutor"


def test_an_unreachable_ray_address_is_one_line():
    pytest.importorskip("ray", reason="ray is not installed (pip install 'longscope[ray]'; make test has it)")
    port = free_port()
    with pytest.raises(UsageError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        make_executor("ray", f"127.0.0.1:{port}", [], "hf:whatever")
    with pytest.raises(UsageError, match="not HOST:PORT"):
        make_executor("ray", "127.0.0.1:abc", [], "hf:whatever")


@pytest.fixture
def model_list_server():
    """A stub OpenAI server whose /v1/models lists one model, ``served``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "served", "object": "model"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_endpoints_that_do_not_answer_or_serve_another_model_are_one_line(model_list_server):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'longscope[ray]'; make test has it)")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    model = f"openai:{model_list_server}#served?concurrency=3"
    with pytest.raises(UsageError, match=f"cannot reach the server at {dead}"):
        make_executor("ray", None, [model_list_server, dead], model)
    with pytest.raises(UsageError, match="does not serve model 'other'; it serves: served"):
        make_executor("ray", None, [model_list_server], f"openai:{model_list_server}#other")
    with pytest.raises(UsageError, match="not an openai: URI"):
        make_executor("ray", None, [model_list_server], "hf:somewhere")
    with pytest.raises(UsageError, match="given twice"):
        endpoint_uris(model, [model_list_server, model_list_server + "/"])
    assert endpoint_uris(model, ["http://a:1/v1", "http://b:2/v1"]) == [
        "openai:http://a:1/v1#served?concurrency=3",
        "openai:http://b:2/v1#served?concurrency=3",
    ]


# -- several endpoints: two real llama.cpp servers ----------------------------------------------------------


@pytest.fixture
def second_server(llamacpp_server, tmp_path):
    """Another llama-cpp-python server with the same GGUF (one server answers one request at a time, so two
    addresses of one server would be one endpoint)."""
    import subprocess
    import time

    import httpx

    port = free_port()
    with (tmp_path / "second.log").open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", llamacpp_server.model, "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "the second server did not start"
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_endpoints_share_the_work_and_give_the_local_rows(
    ray_cluster, llamacpp_server, second_server, tmp_path
):
    first = f"{llamacpp_server.url}/v1"
    model = f"openai:{first}#{llamacpp_server.model}?concurrency=1"
    config = RunConfig(model=model, tasks=["niah(max_new_tokens=8)"], lengths=[256, 512], depths=[0.0, 1.0])
    run(config, tmp_path / "local", show_progress=False)
    executor = make_executor("ray", None, [first, second_server], model)
    executor.wait_for_all = True
    run(config, tmp_path / "ray", executor=executor, show_progress=False)
    assert stored(tmp_path / "ray") == stored(tmp_path / "local")
    assert len(executor.answered) == 2 and min(executor.answered) >= 1 and sum(executor.answered) == 4


def test_ray_bad_input_from_the_command_line_is_one_line_and_exit_2(tmp_path, tiny_model_dir):
    from conftest import run_cli

    port = free_port()
    out = tmp_path / "run"
    for args, fragment in (
        (
            ["--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
            f"cannot reach the Ray cluster at 127.0.0.1:{port}",
        ),
        (["--executor", "dask"], "unknown executor 'dask'"),
        (["--endpoint", "http://127.0.0.1:1/v1"], "need --executor ray"),
    ):
        done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks", "niah", "--lengths", "512",
                       "--out", str(out), *args)  # fmt: skip
        lines = [
            line for line in done.stderr.splitlines() if line.strip() and "Token authentication" not in line
        ]
        assert done.returncode == 2 and len(lines) == 1 and fragment in lines[0], done.stderr
        assert not out.exists()  # nothing was written before the refusal


@pytest.mark.slow
def test_a_run_on_an_existing_cluster_ships_the_code_and_gives_the_local_rows(tiny_model_dir, tmp_path):
    """The real path a user with a cluster takes: `ray start --head` elsewhere, then `longscope run --executor
    ray --ray-address HOST:PORT`; the driver's longscope travels to the cluster as a runtime environment."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    from conftest import run_cli

    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray_cli is None:
        pytest.skip("the ray command is not installed (pip install 'longscope[ray]')")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # Ray's socket paths must stay short
    # Token authentication is Ray's business and depends on what ~/.ray holds: off on both sides here.
    env = {"RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=1", f"--temp-dir={temp}",
         "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **env},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        model = f"hf:{tiny_model_dir}"
        args = ["--model", model, "--tasks", "niah", "--lengths", "512", "--samples", "1", "--no-report"]
        done = run_cli("run", *args, "--out", str(tmp_path / "ray"), "--executor", "ray",
                       "--ray-address", f"127.0.0.1:{port}", "--ray-workers", "1", env=env, timeout=400)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert run_cli("run", *args, "--out", str(tmp_path / "local")).returncode == 0
        assert stored(tmp_path / "ray") == stored(tmp_path / "local")
        shipped = list(Path(temp).glob("session_*/runtime_resources/py_modules_files/*"))
        assert shipped, "the cluster holds no shipped copy of longscope"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)

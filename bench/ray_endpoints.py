"""Throughput of the Ray executor over two serving endpoints against the local executor over one.

Usage: .venv/bin/python bench/ray_endpoints.py [--lengths 1024] [--samples 8] [--threads 1] [--repeats 2]
Writes bench/results/ray_endpoints.json. Two llama-cpp-python servers with the bundled GGUF (``--threads``
threads each) are started on loopback ports, each pinned to its own core. The same prepared plan (built once,
so both runs send identical prompts) is answered by the local executor against the first server, then by the
Ray executor (a local cluster of two CPUs) against both, load-balanced by outstanding requests. The clock runs
while items are answered: planning, the cluster's start and the endpoint actors' start (``RayExecutor.start``,
timed apart) are outside it, as a long run amortises them; each server answers once before either run.
llama.cpp reuses the prefix its last prompt shares with the next, so the Ray run must keep such prompts on
one server (the executor's cache-aware dispatch) to do the local run's work: the servers' CPU seconds of
both runs are reported side by side. Local and Ray runs alternate ``--repeats`` times (the host's speed drifts
over minutes) and the figures are sums over them. Reported: each executor's wall time, answered
tokens per second, the speed-up (target: at least 1.8) and whether every prediction is the same. On a shared
machine the neighbours' load lowers the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, threads: int, log: Path, core: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cores = sorted(os.sched_getaffinity(0))
    # Its own core: the two servers then never take turns on one, and the local run's server has one too.
    pinned = {cores[core % len(cores)]}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
             "--n_threads_batch", str(threads)],
            stdout=sink, stderr=subprocess.STDOUT, preexec_fn=lambda: os.sched_setaffinity(0, pinned),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a llama.cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit(f"a llama.cpp server did not start: {log.read_text()[-2000:]}")


def warm_up(url: str, model: str) -> None:
    """One tiny answer, so neither run pays a server's first-request costs (weights paged in, buffers)."""
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1}
    httpx.post(f"{url}/chat/completions", json=body, timeout=120).raise_for_status()


def cpu_seconds(pids: list[int]) -> list[float]:
    """CPU seconds each server process has used so far (user + system)."""
    import psutil

    return [sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids]


def timed(executor, work, backend) -> tuple[float, dict[str, list]]:
    rows: dict[str, list] = {}

    def on_done(item, results):
        for result in results:
            rows[result.key] = [result.status, result.prediction, result.input_tokens, result.output_tokens]

    started = time.perf_counter()
    executor.run(work, backend, retries=0, attempts={}, on_done=on_done)
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1024")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternating local and Ray runs")
    args = parser.parse_args()

    import ray

    from longscope.backends import resolve
    from longscope.backends.smollm2 import gguf_path
    from longscope.config import RunConfig
    from longscope.executors.local import LocalExecutor
    from longscope.executors.ray import make_executor
    from longscope.plan import check_plan, plan, prepare
    from longscope.runner import validate
    from longscope.spec import parse_lengths

    model_path = str(gguf_path())
    logs = Path(tempfile.mkdtemp(prefix="ray-endpoints-"))
    servers = [start_server(model_path, args.threads, logs / f".ray_endpoint_{i}.log", i) for i in range(2)]
    try:
        for _, url in servers:
            warm_up(url, model_path)
        pids = [process.pid for process, _ in servers]
        model = f"openai:{servers[0][1]}#{model_path}?concurrency=1"
        config = RunConfig(
            model=model,
            tasks=["niah(max_new_tokens=16)"],
            lengths=parse_lengths(args.lengths),
            depths=[0.0, 0.5, 1.0],
            samples=args.samples,
        )
        tasks, methods = validate(config)
        backend = resolve(model)
        check_plan(tasks, methods, config, backend)
        work = [
            item
            for item in prepare(plan(tasks, config, methods), backend, config, set())
            if item.skip is None
        ]

        # Alternating runs: the host's speed drifts by several per cent over minutes (a VM), which one run of
        # each would read as a speed-up or a loss; the figures are the sums over the repeats.
        local_runs, ray_runs, local_cpu, ray_cpu, actors_s, shares = [], [], 0.0, 0.0, 0.0, []
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for _ in range(args.repeats):
                before = cpu_seconds(pids)
                local_s, local_rows = timed(LocalExecutor(), work, backend)
                local_cpu += sum(cpu_seconds(pids)) - sum(before)
                local_runs.append(local_s)
                executor = make_executor("ray", None, [url for _, url in servers], model)
                began = time.perf_counter()
                executor.start()  # both endpoint clients connected before the clock starts
                actors_s += time.perf_counter() - began
                before = cpu_seconds(pids)
                ray_s, ray_rows = timed(executor, work, backend)
                ray_cpu += sum(cpu_seconds(pids)) - sum(before)
                ray_runs.append(ray_s)
                shares.append(executor.answered)
                if ray_rows != local_rows:
                    break
        finally:
            ray.shutdown()
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=30)

    tokens = sum((row[2] or 0) + (row[3] or 0) for row in local_rows.values())
    result = {
        "items": len(work),
        "lengths": config.lengths,
        "threads_per_server": args.threads,
        "repeats": len(ray_runs),
        "local_one_server_s_per_run": [round(x, 2) for x in local_runs],
        "ray_two_servers_s_per_run": [round(x, 2) for x in ray_runs],
        "speedup_per_run": [round(a / b, 2) for a, b in zip(local_runs, ray_runs, strict=True)],
        "local_one_server_s": round(sum(local_runs), 2),
        "ray_two_servers_s": round(sum(ray_runs), 2),
        "ray_actor_start_s": round(actors_s, 2),
        "speedup_with_actor_start": round(sum(local_runs) / (sum(ray_runs) + actors_s), 2),
        "local_tokens_per_s": round(tokens * len(local_runs) / sum(local_runs), 1),
        "ray_tokens_per_s": round(tokens * len(ray_runs) / sum(ray_runs), 1),
        "speedup": round(sum(local_runs) / sum(ray_runs), 2),
        "target_speedup": 1.8,
        "items_per_endpoint": shares,
        # The servers' own work: equal when the Ray run keeps the prefix reuse the local run has in plan order.
        "server_cpu_s_local": round(local_cpu, 2),
        "server_cpu_s_ray": round(ray_cpu, 2),
        "identical_predictions": local_rows == ray_rows,
        "all_ok": all(row[0] == "ok" for row in local_rows.values()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "note": "the clock times answering only: the cluster's and the endpoint actors' start are outside it "
        "(the latter is ray_actor_start_s); servers pinned to a core each and warmed up with one tiny answer",
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    (HERE / "results" / "ray_endpoints.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

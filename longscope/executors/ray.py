"""The Ray executor: the plan sharded over Ray actors, each holding its own backend, for users with many GPUs,
nodes or serving endpoints.

An actor builds its backend from the model URI (a string travels, never a loaded model): one model replica per
GPU for in-process models (``hf:``, ``gguf:``, ``smollm2``), or one client pool per serving endpoint for
``openai:`` models given several ``--endpoint`` URLs. The dispatcher, on the driver's thread, keeps a few items
in flight per actor, sends each next item to the actor with the fewest outstanding requests, and hands every
finished item's rows to ``on_done`` there, so the driver stays the only writer of the run store. An actor that
dies loses nothing: its unfinished items go back to the front of the queue for the others, and a fresh actor
takes its place (at most once per original actor, so a backend that cannot start does not loop).

Joining an existing cluster (``--ray-address``) ships this process's ``longscope`` package to it as a Ray
``py_modules`` runtime environment, so every node runs the driver's code, whatever version it has installed
(the nodes still need longscope's dependencies: torch, transformers, httpx...).

``ray`` is an optional extra (``pip install longscope[ray]``); it is imported only when this executor is used.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from longscope.backends import parse_uri
from longscope.core import Backend, Result, UsageError
from longscope.executors.affinity import LOOKAHEAD, pick, prompt_of
from longscope.executors.base import Executor, OnDone, run_item
from longscope.executors.endpoints import check_endpoints, concurrency_of, endpoint_uris
from longscope.executors.local import LocalExecutor
from longscope.plan import Prepared

EXECUTORS = ("local", "ray")
# Items queued at an in-process actor beyond the one it is answering: it starts the next without waiting for
# the driver, and an interrupted run loses at most these.
IN_PROCESS_DEPTH = 2
CONNECT_TIMEOUT_S = 5.0
RAY_CLIENT_PORT = 10001


def make_executor(
    name: str,
    address: str | None = None,
    endpoints: Sequence[str] = (),
    model: str = "",
    *,
    workers: int | None = None,
) -> Executor:
    """The executor ``--executor NAME`` names, checked before any sample: ray installed, its address
    reachable, every endpoint answering with the model. Each problem is one UsageError line."""
    name = name.strip().lower()
    endpoints = list(endpoints)
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}; give one of {', '.join(EXECUTORS)}")
    if name == "local":
        if address is not None or endpoints or workers is not None:
            raise UsageError("--ray-address, --endpoint and --ray-workers need --executor ray")
        return LocalExecutor()
    if workers is not None and not 1 <= workers <= 4096:
        raise UsageError(f"--ray-workers must be from 1 to 4096, not {workers}")
    _import_ray()
    uris = endpoint_uris(model, endpoints) if endpoints else []
    if uris:
        check_endpoints(uris)
    executor = RayExecutor(model, address=address, endpoints=uris, workers=workers)
    executor.connect()
    return executor


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray: pip install 'longscope[ray]' (or pip install 'ray>=2.9')"
        ) from None
    return ray


class _Worker:
    """One Ray actor: its own backend built from the model URI, answering and scoring the items sent to it."""

    def __init__(self, model: str) -> None:
        from longscope.backends import resolve

        self.backend = resolve(model)

    def answer(self, work: Prepared, retries: int, attempts: dict[str, int]) -> list[Result]:
        return run_item(work, self.backend, retries, attempts)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Slot:
    """An actor as the dispatcher sees it: how many items it may hold and the ones it holds now."""

    handle: Any
    depth: int
    make: Any = None  # builds a fresh actor of the same kind, to replace this one when it dies
    outstanding: dict[Any, Prepared] = field(default_factory=dict)  # object ref -> item, in sending order
    pid: int | None = None  # the actor's process, once it has built its backend (None: not ready yet)
    answered: int = 0  # items it finished
    recent: deque[str] = field(
        default_factory=deque
    )  # prompts of the last items sent, newest last (<= depth)


class RayExecutor:
    """Shards prepared items over Ray actors; see the module's docstring. ``endpoints``: model URIs, one per
    serving endpoint (``endpoint_uris``); without them, ``workers`` replicas of ``model`` (default: one per GPU
    in the cluster, else one per four CPUs), each with ``gpus_per_worker`` GPUs when the cluster has GPUs.
    ``requeued`` and ``answered`` (items per worker) describe the last run."""

    def __init__(
        self,
        model: str,
        *,
        address: str | None = None,
        endpoints: Sequence[str] = (),
        workers: int | None = None,
        cpus_per_worker: float | None = None,
        gpus_per_worker: float | None = None,
        wait_for_all: bool = False,
    ) -> None:
        self.model = model
        self.address = address
        self.endpoints = list(endpoints)
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        # Send nothing until every worker has built its backend (or died): an even start, at the cost of
        # waiting for the slowest; by default the first ready worker starts at once.
        self.wait_for_all = wait_for_all
        self.slots: list[_Slot] = []
        self.answered: list[int] = []  # items each worker of the last run finished (dead ones included)
        self.requeued = 0  # items taken back from dead actors and sent again
        self.replaced = 0  # dead actors replaced by fresh ones
        self._owns_cluster = False
        self._prompts: dict[int, str] = {}  # id of a queued item -> its prompt, for the cache-aware choice

    # -- the cluster --------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster at ``address`` (checked to answer first), or start a local one; a UsageError line
        when that fails. A cluster this process already joined is used as it is."""
        ray = _import_ray()
        if self.address:
            _check_reachable(self.address)
        if ray.is_initialized():
            return
        try:
            ray.init(
                address=self.address or None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env=shipped_code() if self.address else None,
            )
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user gets one line
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot start or join {where}: {first}") from None
        self._owns_cluster = True

    def close(self) -> None:
        """Stop the actors, and the Ray connection (a local cluster with it) if this executor made it."""
        ray = _import_ray()
        for slot in self.slots:
            ray.kill(slot.handle)
        self.slots = []
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()
        self._owns_cluster = False

    def _start(self) -> list[_Slot]:
        ray = _import_ray()
        actor = ray.remote(_Worker)
        # An openai: model without --endpoint is served by the one server its URI names.
        endpoints = self.endpoints or ([self.model] if parse_uri(self.model).scheme == "openai" else [])
        if endpoints:
            slots = []
            for uri in endpoints:
                depth = concurrency_of(uri)
                options = actor.options(num_cpus=0, max_concurrency=depth)
                slots.append(_Slot(options.remote(uri), depth, make=lambda o=options, u=uri: o.remote(u)))
            return slots
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        if gpus:
            per_gpu = self.gpus_per_worker or 1.0
            workers = min(self.workers or int(gpus // per_gpu), int(gpus // per_gpu)) or 1
            per_cpu = self.cpus_per_worker or 1.0
        else:
            per_gpu = 0.0
            workers = self.workers or max(1, int(cpus // 4))
            # More workers than CPUs share them (fractions), rather than wait for CPUs that never come free.
            per_cpu = self.cpus_per_worker or (cpus // workers if cpus >= workers else cpus / workers)
        options = actor.options(num_cpus=per_cpu, num_gpus=per_gpu, max_concurrency=1)
        return [
            _Slot(options.remote(self.model), IN_PROCESS_DEPTH, make=lambda: options.remote(self.model))
            for _ in range(workers)
        ]

    def start(self) -> None:
        """Start the actors now and wait until each has built its backend, rather than inside ``run`` (a bench
        then times answers alone); ``run`` uses them, and stops them when it ends."""
        ray = _import_ray()
        self.connect()
        self.slots = self.slots or self._start()
        for slot in self.slots:
            slot.pid = ray.get(slot.handle.pid.remote())

    # -- the dispatcher -----------------------------------------------------------------------------------

    def run(
        self,
        work: Sequence[Prepared],
        backend: Backend,
        *,
        retries: int,
        attempts: dict[str, int],
        on_done: OnDone,
    ) -> None:
        """Answer every item on the actors; ``backend`` (the driver's, used for planning) is not sent. An actor
        gets items once it has built its backend, so one that cannot start, or waits for resources, holds
        none."""
        ray = _import_ray()
        from ray.exceptions import RayActorError

        if not work:
            return
        self.connect()
        queue = deque(work)
        self._prompts = {}
        self.slots = self.slots or self._start()
        started = list(self.slots)
        replacements = len(self.slots)
        # Every reference in flight: an item's answer, or an actor's "ready" (its pid, once its backend loaded).
        owner: dict[Any, _Slot] = {slot.handle.pid.remote(): slot for slot in self.slots if slot.pid is None}
        last_death = ""
        try:
            while queue or any(slot.outstanding for slot in self.slots):
                self._fill(queue, owner, retries, attempts)
                if not owner:
                    raise RuntimeError(f"every Ray worker died; the last said: {last_death}")
                ready, _ = ray.wait(list(owner), num_returns=1)
                ref = ready[0]
                slot = owner.pop(ref)
                try:
                    answer = ray.get(ref)
                except RayActorError as exc:
                    last_death = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    if slot in self.slots and replacements and slot.make is not None:
                        # A fresh actor gets items once it has built its backend, as the first ones did.
                        replacements -= 1
                        fresh = _Slot(slot.make(), slot.depth, make=slot.make)
                        self.slots.append(fresh)
                        started.append(fresh)
                        owner[fresh.handle.pid.remote()] = fresh
                        self.replaced += 1
                    self._bury(slot, queue, owner)
                    continue
                if ref not in slot.outstanding:
                    slot.pid = answer
                    continue
                slot.answered += 1
                on_done(slot.outstanding.pop(ref), answer)
        finally:
            self.answered = [slot.answered for slot in started]
            self.close()

    def _fill(self, queue: deque[Prepared], owner: dict[Any, _Slot], retries: int, attempts: dict) -> None:
        """Send queued items while a ready actor has room, each to the one with the fewest outstanding."""
        if self.wait_for_all and any(slot.pid is None for slot in self.slots):
            return
        while queue:
            open_slots = [s for s in self.slots if s.pid is not None and len(s.outstanding) < s.depth]
            if not open_slots:
                return
            slot = min(open_slots, key=lambda s: len(s.outstanding))
            item = self._next_for(slot, queue)
            known = {key: attempts[key] for key in map(item.item.key, range(item.turns)) if key in attempts}
            ref = slot.handle.answer.remote(item, retries, known)
            slot.outstanding[ref] = item
            owner[ref] = slot

    def _next_for(self, slot: _Slot, queue: deque[Prepared]) -> Prepared:
        """Take the item ``slot`` answers next off the queue: with several workers, the cache-aware choice
        (``affinity.pick``) among the first few, so prompts sharing a long prefix reach the same server."""
        if len(self.slots) < 2:
            return queue.popleft()
        ahead = [queue[index] for index in range(min(LOOKAHEAD, len(queue)))]
        prompts = [self._prompt(work) for work in ahead]
        others = [other.recent for other in self.slots if other is not slot]
        index = pick(prompts, slot.recent, others)
        item = queue[index]
        del queue[index]
        del self._prompts[id(item)]  # only the queue's head is kept: a 128k prompt is half a megabyte
        slot.recent.append(prompts[index])
        while len(slot.recent) > slot.depth:
            slot.recent.popleft()
        return item

    def _prompt(self, work: Prepared) -> str:
        key = id(work)
        if key not in self._prompts:
            self._prompts[key] = prompt_of(work)
        return self._prompts[key]

    def _bury(self, slot: _Slot, queue: deque[Prepared], owner: dict[Any, _Slot]) -> None:
        """A dead actor: its unfinished items go back to the front of the queue, in plan order."""
        if slot not in self.slots:
            return
        self.slots.remove(slot)
        for ref in [ref for ref, holder in owner.items() if holder is slot]:
            del owner[ref]
        items = list(slot.outstanding.values())
        slot.outstanding.clear()
        queue.extendleft(reversed(items))
        self.requeued += len(items)


def shipped_code() -> dict[str, Any]:
    """The runtime environment that sends this process's ``longscope`` package to every node of a cluster."""
    import longscope

    return {"py_modules": [os.path.dirname(os.path.abspath(longscope.__file__))]}


def _check_reachable(address: str) -> None:
    """A cheap TCP check of a Ray address (``HOST:PORT`` or ``ray://HOST[:PORT]``), so an unreachable one is a
    quick clear line rather than Ray's long wait. ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    rest = address.removeprefix("ray://")
    host, colon, port_text = rest.rpartition(":")
    if not colon:
        host, port_text = rest, str(RAY_CLIENT_PORT if address.startswith("ray://") else 6379)
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"the Ray address {address!r} is not HOST:PORT or ray://HOST:PORT") from None
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None

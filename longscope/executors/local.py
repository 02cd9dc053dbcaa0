"""The local executor: prepared work items answered in this process, several at once where the backend batches."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from longscope.core import Backend, Result
from longscope.executors.base import OnDone, run_item
from longscope.plan import Prepared


class LocalExecutor:
    """Up to ``backend.capabilities.max_concurrency`` items in flight (an HTTP server batches them; in-process
    backends answer one at a time). Only as many items are started as there are workers, so an interrupted run
    loses at most those, and the plan's order (every length early) is kept."""

    def run(
        self,
        work: Sequence[Prepared],
        backend: Backend,
        *,
        retries: int,
        attempts: dict[str, int],
        on_done: OnDone,
    ) -> None:
        workers = max(1, int(backend.capabilities.max_concurrency or 1))
        if workers == 1:
            for item in work:
                on_done(item, run_item(item, backend, retries, attempts))
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="longscope-sample")
        try:
            queue = iter(work)
            pending: dict[Future[list[Result]], Prepared] = {}

            def submit_next() -> None:
                following = next(queue, None)
                if following is not None:
                    pending[pool.submit(run_item, following, backend, retries, attempts)] = following

            for _ in range(workers):
                submit_next()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    on_done(item, future.result())
                    submit_next()
        finally:
            # On an interrupt, items not yet started stay to do on resume; those in flight are not written.
            pool.shutdown(wait=False, cancel_futures=True)

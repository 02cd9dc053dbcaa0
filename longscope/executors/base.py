"""What every executor shares: answering and scoring one prepared work item, and the executor interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from longscope import rows, trace
from longscope.core import Backend, Result
from longscope.judging.grading import needs_judge
from longscope.plan import Prepared
from longscope.scoring import score_turn

# Called by an executor, on the driver's thread, with each finished item's rows: the driver alone writes them.
OnDone = Callable[[Prepared, list[Result]], None]


class Executor(Protocol):
    """Runs prepared work items and hands back their rows through ``on_done``, on the caller's thread, as each
    item finishes. It never touches the run store; an interrupted run loses at most the items in flight."""

    def run(
        self,
        work: Sequence[Prepared],
        backend: Backend,
        *,
        retries: int,
        attempts: dict[str, int],
        on_done: OnDone,
    ) -> None: ...


def run_item(work: Prepared, backend: Backend, retries: int, attempts_before: dict[str, int]) -> list[Result]:
    """Answer and score every turn of one sample under its method; a raised exception is retried, then kept as
    a failed row, never dropped. After a failure the method's solver starts again, so a retry never sees a
    half-updated shared state."""
    item, sample = work.item, work.sample
    results = []
    solver = None
    replies: list[str] = []  # the answers so far, which the multi-turn-own mode feeds back as the replies
    for turn in range(len(sample.turns)):
        request = item.request(sample, turn, replies)
        before = attempts_before.get(item.key(turn), 0)
        error = ""
        for attempt in range(1, retries + 2):
            try:
                if solver is None:
                    solver = item.method.solver(backend, item.mode)
                trace.point("prefill")
                generation = solver.answer(sample, turn, request)
            except Exception as exc:  # noqa: BLE001 - any failure of one sample becomes a row, not a crash
                error = f"{type(exc).__name__}: {exc}".strip()
                solver = None
                continue
            if needs_judge(sample):  # graded by the run's judge once the row reaches the driver
                score, details = None, {}
            else:
                score, details = score_turn(
                    item.task.metric, generation.text, sample.turns[turn], sample.metadata
                )
            results.append(rows.answered(work, backend, turn, before + attempt, generation, score, details))
            replies.append(generation.text)
            break
        else:
            results.append(rows.failed(work, backend, turn, before + retries + 1, error))
            replies.append("")  # a failed turn answered nothing
    return results

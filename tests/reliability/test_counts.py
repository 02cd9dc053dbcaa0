"""Every whole-number parameter of every registered task, set far beyond what a request could hold, is refused
up front and at once: the registry is walked, so a task added later is covered without an entry here."""

from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import shared_tiny_backend

from longscope.core import UsageError
from longscope.tasks import TASKS, make_task

HUGE = 1_000_000_000
LENGTH = 512


def _counted_parameters() -> list[tuple[str, str]]:
    """(task, parameter) for each whole-number parameter that counts something in the prompt."""
    cases = []
    for name in TASKS:
        task = make_task(name)
        for field in dataclasses.fields(task):
            value = getattr(task, field.name)
            counted = field.name != "max_new_tokens" and field.name not in task.uncounted
            if counted and isinstance(value, int) and not isinstance(value, bool):
                cases.append((name, field.name))
    return cases


CASES = _counted_parameters()


def test_the_walk_finds_the_known_count_parameters():
    # A guard on the walk itself: if it found nothing, the test below would pass vacuously.
    assert {("niah_multikey", "num_keys"), ("reorder", "segments"), ("variable_tracking", "hops")} <= set(
        CASES
    )
    assert len(CASES) >= 40


# A case that is known not to be refused yet goes here with its reason (a strict xfail: fixing it fails here).
KNOWN_GAPS: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize(
    "task, parameter",
    [
        pytest.param(t, p, marks=pytest.mark.xfail(reason=KNOWN_GAPS[t, p], strict=True))
        if (t, p) in KNOWN_GAPS
        else (t, p)
        for t, p in CASES
    ],
    ids=[f"{t}.{p}" for t, p in CASES],
)
def test_a_count_beyond_the_request_is_refused_before_anything_is_built(task, parameter):
    backend = shared_tiny_backend()  # built before the clock starts: the bound is on the refusal alone
    started = time.monotonic()
    with pytest.raises(UsageError) as refused:
        make_task(f"{task}({parameter}={HUGE})").check(backend, LENGTH)
    assert time.monotonic() - started < 5  # refused, not worked through
    message = str(refused.value)
    assert "\n" not in message and parameter in message, message

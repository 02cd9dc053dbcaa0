"""Threading tasks: a reference solver that follows the records, record depths, scoring, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample
from longscope.scoring import score
from longscope.tasks import TASKS, make_task

HEX = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RECORD = re.compile(rf"({HEX}) -> ({HEX})")

SPECS = [
    "threading",
    "threading(direction=backward,hops=1)",
    "multi_threading",
    "multi_threading(direction=backward,hops=5,threads=2)",
]


def solve(sample: Sample) -> list[str]:
    """A reference solver: read every record into dicts both ways and walk each asked thread."""
    records = RECORD.findall(sample.context)
    # Every record is whole: no arrow in the context belongs to anything but a parsed record.
    assert sample.context.count("->") == len(records)
    forward = dict(records)
    backward = {value: key for key, value in records}
    assert len(forward) == len(records) and len(backward) == len(records)
    hops = int(re.search(r"(\d+) steps?", sample.question).group(1))
    asked = re.findall(HEX, sample.question)
    ends = []
    for start in asked:
        step = backward if "backwards" in sample.question else forward
        current = start
        for _ in range(hops):
            current = step[current]
        # The walk stops where the thread does: nothing links on from either end.
        assert current not in step
        ends.append(current)
    return ends


@pytest.mark.parametrize("spec", SPECS)
def test_reference_solver_recovers_the_gold_answers(spec):
    backend = tiny_backend()
    task = make_task(spec)
    for seed in (0, 1, 2):
        sample = task.build(backend, 4096, None, seed=seed)
        assert solve(sample) == list(sample.answers)
        assert len(sample.answers) == task.threads
        # Only thread records link: hops - 1 inner links per thread, no accidental ones among distractors.
        records = RECORD.findall(sample.context)
        keys = {key for key, _ in records}
        assert sum(value in keys for _, value in records) == task.threads * (task.hops - 1)
        assert len(records) > task.hops * task.threads  # distractors are there too


def test_thread_records_sit_at_depths_drawn_from_the_seed():
    backend = tiny_backend()
    depths = make_task("threading(hops=4)").build(backend, 4096, None, seed=2).metadata["needle_depths"]
    assert len(depths) == 4 and len(set(depths)) > 1
    assert all(0 <= d <= 1 for d in depths)


def test_metadata_breakdowns_and_the_plane():
    backend = tiny_backend()
    sample = make_task("multi_threading(hops=2,direction=backward)").build(backend, 2048, None, seed=0)
    assert {k: sample.metadata[k] for k in ("hops", "threads", "direction")} == {
        "hops": 2,
        "threads": 3,
        "direction": "backward",
    }
    assert TASKS.get("threading").breakdowns == ("hops", "threads")
    assert make_task("threading(hops=1)").diffusion == 0.5
    assert make_task("threading(direction=backward)").diffusion > make_task("threading").diffusion
    assert make_task("threading(hops=1)").scope == 0.05
    assert make_task("threading(hops=6)").scope > make_task("threading(hops=2)").scope
    assert make_task("multi_threading").scope > make_task("threading").scope
    for name in ("threading", "multi_threading"):
        task = make_task(name)
        assert 0 <= task.diffusion <= 1 and 0 <= task.scope <= 1
        assert task.metric == "contains_all" and not task.uses_depth


def test_scoring_counts_the_share_of_thread_ends_found():
    sample = make_task("multi_threading").build(tiny_backend(), 2048, None, seed=1)
    a, b, c = sample.answers
    assert score("contains_all", f" {a}, {b} and {c}", sample.answers) == 1.0
    assert score("contains_all", f" {c.upper()} and {a}", sample.answers) == pytest.approx(2 / 3)
    # A one-character slip or a truncated identifier is not the end of the thread.
    slip = a[:-1] + ("1" if a[-1] != "1" else "2")
    assert score("contains_all", f" {slip} and {b[:8]}", sample.answers) == 0.0
    single = make_task("threading").build(tiny_backend(), 1024, None, seed=1)
    assert score("contains_all", f" {single.answers[0]}.", single.answers) == 1.0
    assert score("contains_all", " I could not follow the thread.", single.answers) == 0.0

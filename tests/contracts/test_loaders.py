"""The contract every task that reads published data keeps: each scorer it names is registered, and its fixture
under tests/fixtures loads offline into samples its scorer can score."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
from benchmarks.offline import force_offline
from conftest import tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.judging.grading import needs_judge
from longscope.scoring import SCORERS, score_turn
from longscope.tasks import TASKS, Task, make_task, task_metrics

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# One sample per record, as long as the record is.
LOADERS = [name for name, cls in TASKS.items() if cls.published]
# Records fitted to the run's lengths and depths (RULER's QA, NeedleBench's needles).
READERS = [name for name, cls in TASKS.items() if cls.reads_data and not cls.published]


@functools.cache
def backend() -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer(), name="tiny")


def subsets_of(cls: type[Task]) -> tuple[str, ...]:
    """The subsets a task declares; a reader that is no Benchmark lists them in its module's SUBSETS."""
    return tuple(getattr(cls, "subsets", ()) or getattr(sys.modules[cls.__module__], "SUBSETS", ()))


def test_the_data_reading_tasks_are_all_here():
    assert len(LOADERS) >= 9 and {"needlebench", "ruler_qa"} <= set(READERS)
    assert not set(LOADERS) & set(READERS)
    for name in LOADERS + READERS:
        assert (FIXTURES / name).is_dir(), f"tests/fixtures/{name} is missing"


@pytest.mark.parametrize("name", LOADERS + READERS)
def test_every_scorer_it_names_is_registered(name):
    cls = TASKS.get(name)
    named = task_metrics(cls) | {make_task(f"{name}:{subset}").metric for subset in subsets_of(cls)}
    assert named and named <= set(SCORERS), sorted(named - set(SCORERS))
    assert set(getattr(cls, "subset_metrics", {}).values()) <= named


@pytest.mark.parametrize("name", LOADERS + READERS)
def test_its_fixture_loads_offline_into_samples_its_scorer_scores(name, monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    task = make_task(name).with_data(str(FIXTURES / name))
    task.check(backend(), 2048)
    work = task.work([2048], [0.5], [0, 1])
    assert work
    if name in LOADERS:
        assert len(work) == len(task.records())
    for length, depth, seed in work:
        sample = task.build(backend(), length, depth, seed)
        if needs_judge(sample):  # graded by a judge against its checklist or reference (tests/judging)
            assert sample.turns and task.metric == "judge"
            continue
        assert sample.turns and sample.context
        # A benchmark scored record by record names each record's own scorer in its metadata.
        own = sample.metadata["metric"] if task.metric == "per_record" else task.metric
        assert own in SCORERS
        for turn in sample.turns:
            assert turn.answers
            gold, _ = score_turn(task.metric, turn.answers[0], turn, sample.metadata)
            nothing, _ = score_turn(task.metric, "I cannot tell.", turn, sample.metadata)
            assert 0 <= nothing <= gold <= 1, sample.id
    assert attempts == []

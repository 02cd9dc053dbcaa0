"""Prompt-level methods: the hook (several calls, summed accounting) and ``truncate`` on every backend kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from conftest import tiny_backend

from longscope.core import GenerationRequest, UsageError
from longscope.executors.base import run_item
from longscope.methods import make_method
from longscope.methods.base import PromptMethod, combined
from longscope.plan import Prepared, WorkItem
from longscope.runner import RunConfig, run
from longscope.store import RunStore
from longscope.tasks import cached_sample, make_task
from longscope.truncation import keep_tokens


@dataclass(frozen=True)
class AskTwice(PromptMethod):
    """A stand-in for retrieve-then-answer: a first call over half the context, a second over the rest."""

    name = ""  # not registered

    def answer(self, sample, turn, request, backend):
        half = len(request.context) // 2
        first = backend.generate(request.with_context(request.context[:half]))
        second = backend.generate(request.with_context(request.context[half:]))
        return combined([first, second])


def _prepared(backend, method, spec="niah(max_new_tokens=6)", length=512):
    task = make_task(spec)
    item = WorkItem(task=task, length=length, depth=0.5, seed=0, method=method)
    return Prepared(item, cached_sample(task, backend, length, 0.5, 0))


def test_the_hook_sums_calls_tokens_and_time_over_a_methods_calls():
    backend = tiny_backend()
    work = _prepared(backend, AskTwice())
    [row] = run_item(work, backend, retries=0, attempts_before={})
    first = backend.generate(
        work.item.request(work.sample, 0).with_context(work.sample.context[: len(work.sample.context) // 2])
    )
    assert row.status == "ok" and row.calls == 2
    # Two prompts of about half the context each, plus the instructions twice: more than one full prompt.
    full = backend.generate(work.item.request(work.sample, 0))
    assert row.input_tokens > full.input_tokens and row.input_tokens > first.input_tokens
    assert row.output_tokens >= 2 and row.wall_s > 0


def test_truncate_sends_the_context_cut_to_its_budget():
    backend = tiny_backend()
    method = make_method("truncate(policy=left):budget=100")
    work = _prepared(backend, method)
    [row] = run_item(work, backend, retries=0, attempts_before={})
    request = work.item.request(work.sample, 0)
    cut = keep_tokens(backend, work.sample.context, 100, "left")
    assert len(backend.encode(cut)) <= 100 and cut and work.sample.context.endswith(cut.strip()[-40:])
    direct = backend.generate(request.with_context(cut))
    assert (row.prediction, row.input_tokens, row.calls) == (direct.text, direct.input_tokens, 1)
    full_tokens = backend.generate(request).input_tokens
    assert full_tokens - row.input_tokens >= len(backend.encode(work.sample.context)) - 100 - 2


def test_truncate_at_ratio_zero_is_full_context():
    backend = tiny_backend()
    work = _prepared(backend, make_method("truncate:0"))
    [row] = run_item(work, backend, retries=0, attempts_before={})
    assert row.input_tokens == backend.generate(work.item.request(work.sample, 0)).input_tokens


def test_truncate_runs_beside_full_in_one_plan_with_rows_kept_apart(tmp_path):
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=6)"], lengths=[512], depths=[0.5],
                       methods=["full", "truncate:budget=64"])  # fmt: skip
    summary = run(config, tmp_path, backend=tiny_backend(), show_progress=False)
    assert list(summary.tables) == ["full", "truncate:budget=64"]
    store = RunStore.open(tmp_path, create=False)
    try:
        rows = {row.method: row for row in store.results()}
    finally:
        store.close()
    assert rows["truncate:budget=64"].input_tokens < rows["full"].input_tokens
    assert rows["truncate:budget=64"].calls == rows["full"].calls == 1


def test_truncate_refuses_an_unknown_policy_and_a_budget_above_the_context(tmp_path):
    with pytest.raises(UsageError, match="unknown policy 'skip'"):
        make_method("truncate(policy=skip):budget=10")
    config = RunConfig(model="hf:tiny", tasks=["niah"], lengths=[512], methods=["truncate:budget=5000"])
    with pytest.raises(UsageError, match="budget 5000 is larger than the context"):
        run(config, tmp_path, backend=tiny_backend(), show_progress=False)
    assert not (tmp_path / "run.db").exists()


def test_with_context_replaces_only_the_context():
    request = GenerationRequest(
        messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "Read: CTX. Q?"}],
        context="CTX",
    )
    cut = request.with_context("C")
    assert cut.messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "Read: C. Q?"}]
    assert cut.context == "C" and request.messages[1]["content"] == "Read: CTX. Q?"
    with pytest.raises(ValueError):
        GenerationRequest(messages=[{"role": "user", "content": "x"}]).with_context("y")

"""The default run: each context prefilled once for its questions, with the same stored answers as a fresh
prefill per question, and the reused prompt tokens recorded in each row."""

from __future__ import annotations

import dataclasses

from conftest import tiny_backend

from longscope.config import RunConfig
from longscope.runner import run
from longscope.store import RunStore
from longscope.suites import BUILTIN


def _rows(run_dir):
    store = RunStore.open(run_dir, create=False)
    try:
        return {(row.sample_id, row.turn): row for row in store.results()}
    finally:
        store.close()


def test_the_default_suite_shares_each_prefill_and_stores_what_independent_mode_stores(tmp_path):
    shared = RunConfig.from_options(suite=BUILTIN["quick"], model="hf:tiny", lengths="1k", samples="2")
    assert shared.mode == "multi-request" and len(shared.tasks) >= 2
    independent = dataclasses.replace(shared, mode="independent")
    backend = tiny_backend()
    run(shared, tmp_path / "shared", backend=backend, show_progress=False)
    run(independent, tmp_path / "independent", backend=backend, show_progress=False)
    together, apart = _rows(tmp_path / "shared"), _rows(tmp_path / "independent")
    assert set(together) == set(apart) and len(together) == 2 * (6 + 8)
    for key, row in together.items():
        assert row.status == apart[key].status == "ok"
        assert (row.prediction, row.score) == (apart[key].prediction, apart[key].score), key
        assert row.input_tokens == apart[key].input_tokens  # the same prompt, however it was prefilled
        assert apart[key].reused_tokens == 0
        if row.turn == 0:
            assert row.reused_tokens == 0  # the first question prefills the context
        else:
            # Every later question finds the context (all but its last few template tokens) in the cache.
            assert 0.8 * row.input_tokens < row.reused_tokens < row.input_tokens

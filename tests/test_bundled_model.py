"""The real bundled model, end to end: converted once, cached, and able to find a needle at 1k."""

from __future__ import annotations

import pytest

from longscope.backends import resolve, smollm2
from longscope.scoring import score
from longscope.tasks import make_task

pytestmark = pytest.mark.slow


@pytest.fixture
def user_cache(monkeypatch):
    """The real user cache: the conversion is shared with `make run` instead of repeated per test."""
    monkeypatch.delenv("LONGSCOPE_CACHE", raising=False)


def test_bundled_model_finds_a_single_needle_at_1k(user_cache):
    backend = resolve("smollm2")
    assert backend.model_name == "smollm2-135m-instruct"
    assert backend.context_window == 8192
    assert backend.model_revision.startswith("gguf-sha256:")
    task = make_task("niah")
    sample = task.build(backend, 1024, 0.5, seed=0)
    assert sample.metadata["realised_tokens"] == 1024
    generation = backend.generate(sample.request())
    assert score(task.metric, generation.text, sample.answers) == 1.0, (generation.text, sample.answers)
    assert generation.input_tokens == 1024 - task.max_new_tokens


def test_second_load_reads_the_cached_conversion(user_cache, monkeypatch):
    smollm2.load()
    assert (smollm2.converted_dir() / "longscope-conversion.json").is_file()

    def refuse(target):
        raise AssertionError("converted again although the cache was there")

    monkeypatch.setattr(smollm2, "convert", refuse)
    assert smollm2.load().model_name == "smollm2-135m-instruct"

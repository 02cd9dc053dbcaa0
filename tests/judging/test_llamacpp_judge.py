"""The bundled model behind a real llama.cpp server as the judge: a real reply, graded or failed, never guessed."""

from __future__ import annotations

import pytest

from longscope.judging.grading import grading_request
from longscope.judging.setup import make_judge
from longscope.tasks import make_task


@pytest.mark.slow
def test_a_real_server_judges_a_checklist_sample(llamacpp_server):
    from longscope.backends import resolve

    uri = f"openai:{llamacpp_server.url}/v1#{llamacpp_server.model}?price_in=1&price_out=2"
    judge = make_judge(uri)  # the one tiny call up front
    task = make_task("checklist_writing:chat")
    sample = task.build(judge.backend, 0, None, 0)
    request = grading_request(
        sample, 0, "Practise answers aloud, breathe slowly, and prepare three questions."
    )
    first = judge.grade(request)
    assert first.replies and first.usage.calls in (1, 2) and first.usage.input_tokens > 0
    # A small model may not keep the format: then the judgement failed with its replies, never a guessed score.
    assert (first.ok and len(first.grades) == 5) or (not first.ok and first.error.startswith("unreadable"))
    assert first.usage.cost == pytest.approx(
        (first.usage.input_tokens * 1 + first.usage.output_tokens * 2) / 1e6
    )
    if first.ok:
        again = judge.grade(request)
        assert again.cached and again.grades == first.grades and again.usage.calls == 0
    assert resolve(uri).model_name == judge.backend.model_name

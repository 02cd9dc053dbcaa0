"""plan-write and recurrent: the calls each makes, in order, with what each carried; their accounting, their
plan parsing and their refusals; and both answering through the real llama.cpp server."""

from __future__ import annotations

import pytest
from conftest import shared_tiny_backend, tiny_backend

from longscope.core import GenerationRequest, Sample, Turn, UsageError
from longscope.methods import make_method
from longscope.methods.prompt.plan_write import MIN_SECTION_TOKENS, Section
from longscope.runner import RunConfig, run
from longscope.store import RunStore

INSTRUCTION = "Write about 150 words on how bees make honey."


def writing_sample(max_new_tokens: int = 120, prefix: str = "") -> Sample:
    return Sample(
        id="write/s0",
        task="write",
        context="",
        turns=(Turn(INSTRUCTION, (), answer_prefix=prefix),),
        template="{context}{question}",
        max_new_tokens=max_new_tokens,
        system="You are a careful writer.",
    )


class Recorder:
    """A backend that keeps every request it is sent and the answer it gave, in order."""

    def __init__(self, backend):
        self.inner, self.calls = backend, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request: GenerationRequest):
        answer = self.inner.generate(request)
        self.calls.append((request, answer))
        return answer


def user_text(request: GenerationRequest) -> str:
    return request.messages[-1]["content"]


def prompt_tokens(backend, request: GenerationRequest) -> int:
    return backend.count_tokens(backend.render(request.messages, request.answer_prefix))


# -- plan-write ----------------------------------------------------------------------------------------------


def test_plan_write_outlines_then_writes_each_section_with_the_outline_and_the_text_so_far():
    backend = shared_tiny_backend()
    method = make_method("plan-write(sections=3,outline=40)")
    sample = writing_sample(prefix="Essay:")
    recorder = Recorder(backend)
    generation = method.answer(sample, 0, sample.request(0), recorder)

    assert len(recorder.calls) == 4 and generation.calls == 4
    (outline_request, outline_answer), *sections = recorder.calls
    # The outline call: the task's instruction, the section count, its own budget; the system prompt kept.
    assert INSTRUCTION in user_text(outline_request) and "exactly 3 sections" in user_text(outline_request)
    assert outline_request.max_new_tokens == 40 and outline_request.answer_prefix == ""
    assert outline_request.messages[0] == {"role": "system", "content": "You are a careful writer."}

    plan = method.plan(outline_answer.text, sample.max_new_tokens)
    outline = "\n".join(f"Section {i + 1}: {s.point} ({s.words} words)" for i, s in enumerate(plan))
    written: list[str] = []
    for number, ((request, answer), section) in enumerate(zip(sections, plan, strict=True), start=1):
        text = user_text(request)
        assert INSTRUCTION in text and outline in text and f"section {number} of 3 only" in text
        so_far = "\n\n".join(written) or "(nothing yet)"
        assert f"<written>\n{so_far}\n</written>" in text
        assert request.max_new_tokens == section.max_new_tokens
        # Only the first section opens with the task's answer prefix.
        assert request.answer_prefix == ("Essay:" if number == 1 else "")
        if answer.text.strip():
            written.append(answer.text.strip())
    written_text = "\n\n".join(written)
    assert generation.text == written_text
    assert sum(s.max_new_tokens for s in plan) <= sample.max_new_tokens
    assert generation.input_tokens == sum(prompt_tokens(backend, r) for r, _ in recorder.calls)
    assert generation.output_tokens == sum(a.output_tokens for _, a in recorder.calls)


def test_plan_write_reads_the_outline_budgets_and_shares_the_output_budget_by_them():
    method = make_method("plan-write(sections=3)")
    outline = "Section 1: Where bees live (100 words)\n2. Nectar and enzymes - 300 words\n\n- Storing honey"
    # Hand-worked: the third line names no budget, so it gets an equal share, round(200 * 0.75 / 3) = 50
    # words. Output tokens: 16 each, plus the 200 - 48 = 152 spare split 100:300:50 of 450, rounded down:
    # 33, 101 and 16.
    assert method.plan(outline, 200) == [
        Section("Where bees live", 100, 49),
        Section("Nectar and enzymes", 300, 117),
        Section("Storing honey", 50, 32),
    ]
    # An outline with too few lines is padded with generic parts on equal shares.
    # Equal share: round(96 * 0.75 / 3) = 24 words. Tokens: 16 each plus the 96 - 48 = 48 spare split 60:24:24
    # of 108, rounded down: 26, 10 and 10.
    padded = method.plan("Intro (60 words)", 96)
    assert [s.point for s in padded] == ["Intro", "part 2 of the text", "part 3 of the text"]
    assert [s.words for s in padded] == [60, 24, 24] and [s.max_new_tokens for s in padded] == [42, 26, 26]
    assert sum(s.max_new_tokens for s in padded) <= 96


# -- recurrent -----------------------------------------------------------------------------------------------


def test_recurrent_carries_the_rolling_memory_and_the_last_segment_into_each_call():
    backend = shared_tiny_backend()
    method = make_method("recurrent(segments=3,memory=24)")
    sample = writing_sample(max_new_tokens=96)
    recorder = Recorder(backend)
    generation = method.answer(sample, 0, sample.request(0), recorder)

    # write, remember, write, remember, write: no memory is needed after the last part.
    assert len(recorder.calls) == 5 and generation.calls == 5
    writes, memories = recorder.calls[0::2], recorder.calls[1::2]
    memory, last, parts = "(nothing yet)", "(nothing yet)", []
    for number, (request, answer) in enumerate(writes, start=1):
        text = user_text(request)
        assert INSTRUCTION in text and f"part {number} of 3" in text
        assert f"earlier parts said:\n{memory}\n" in text and f"<last>\n{last}\n</last>" in text
        assert request.max_new_tokens == 96 // 3
        assert ("bring the text to its end" in text) == (number == 3)
        part = answer.text.strip()
        if part:
            parts.append(part)
            last = part
        if number < 3:
            remember, remembered = memories[number - 1]
            assert remember.max_new_tokens == 24
            assert f"<part>\n{part or '(nothing yet)'}\n</part>" in user_text(remember)
            assert f"being written:\n{memory}\n" in user_text(remember)
            memory = remembered.text.strip() or memory
    assert generation.text == "\n\n".join(parts)
    assert generation.input_tokens == sum(prompt_tokens(backend, r) for r, _ in recorder.calls)


# -- refusals and the run ------------------------------------------------------------------------------------


def test_a_section_count_the_budget_cannot_hold_and_calls_above_the_window_are_refused():
    backend = shared_tiny_backend()
    with pytest.raises(UsageError, match="too few for 8 sections of at least 16"):
        make_method("plan-write(sections=8)").check_sample(
            writing_sample(max_new_tokens=8 * MIN_SECTION_TOKENS - 1), backend
        )
    make_method("plan-write(sections=8)").check_sample(
        writing_sample(max_new_tokens=8 * MIN_SECTION_TOKENS), backend
    )
    with pytest.raises(UsageError, match="too few for 5 segments"):
        make_method("recurrent(segments=5)").check_sample(writing_sample(max_new_tokens=64), backend)
    huge = writing_sample(max_new_tokens=backend.context_window - 100)
    with pytest.raises(UsageError, match="more than the window of 8192"):
        make_method("plan-write").check_sample(huge, backend)
    with pytest.raises(UsageError, match="more than the window of 8192"):
        make_method("recurrent(segments=2)").check_sample(huge, backend)
    with pytest.raises(UsageError, match="give sections=N, not a ratio"):
        make_method("plan-write:0.5")


def test_both_methods_run_beside_full_with_calls_tokens_and_output_measures_on_their_rows(tmp_path):
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=64)"], lengths=[512], depths=[0.5],
                       methods=["full", "plan-write(sections=2,outline=32)", "recurrent(segments=2,memory=16)"])  # fmt: skip
    run(config, tmp_path, backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path, create=False)
    try:
        rows = {row.method: row for row in store.results()}
    finally:
        store.close()
    assert rows["full"].calls == 1
    assert rows["plan-write(sections=2,outline=32)"].calls == 3
    assert rows["recurrent(segments=2,memory=16)"].calls == 3
    for row in rows.values():
        assert row.status == "ok" and row.output_words == len(row.prediction.split())
        assert row.repetition is not None and 0.0 <= row.repetition <= 1.0
    # Each call re-reads the instruction; the methods' calls never read the 512-token haystack twice over.
    assert rows["plan-write(sections=2,outline=32)"].input_tokens > rows["full"].input_tokens


# -- the real llama.cpp server -------------------------------------------------------------------------------


@pytest.mark.slow
def test_plan_write_and_recurrent_answer_through_the_real_llamacpp_server(llamacpp_server):
    from longscope.backends import resolve

    backend = Recorder(resolve(f"openai:{llamacpp_server.url}/v1#{llamacpp_server.model}"))
    sample = writing_sample(max_new_tokens=96)
    for spec, kinds in (("plan-write(sections=2,outline=48)", ["exactly 2 sections", "section 1 of 2",
                                                               "section 2 of 2"]),
                        ("recurrent(segments=2,memory=32)", ["part 1 of 2", "Rewrite the memory", "part 2 of 2"])):  # fmt: skip
        backend.calls.clear()
        method = make_method(spec)
        method.check_sample(sample, backend)
        generation = method.answer(sample, 0, sample.request(0), backend)
        assert [k in user_text(r) for (r, _), k in zip(backend.calls, kinds, strict=True)] == [True] * 3, spec
        assert generation.calls == 3 and generation.input_tokens > 0 and generation.output_tokens > 0, spec
        assert generation.text.strip(), spec
        assert generation.output_tokens == sum(a.output_tokens for _, a in backend.calls)

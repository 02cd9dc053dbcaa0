"""RULER QA from local SQuAD / HotpotQA files: exact lengths, RULER's template, gold documents, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import prompt_tokens, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.ruler_qa import ANSWER_PREFIX, TEMPLATE, RulerQA
from longscope.truncation import truncate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ruler_qa"
SQUAD = json.loads((FIXTURES / "squad.json").read_text())


@pytest.mark.parametrize("subset", ["qa_1", "qa_2"])
@pytest.mark.parametrize("length", [1024, 2048])
@pytest.mark.parametrize(("template", "style"), [("chatml", "bytelevel"), ("llama3", "metaspace")])
def test_whole_request_is_exactly_the_target_length(subset, length, template, style):
    backend = shared_tiny_backend(template, style)
    task = RulerQA(subset=subset, data=str(FIXTURES))
    for seed in (0, 1):
        sample = task.build(backend, length, None, seed)
        assert prompt_tokens(backend, sample) + sample.max_new_tokens == length
        assert sample.metadata["realised_tokens"] == length


def test_prompt_is_rulers_template_with_numbered_documents():
    backend = shared_tiny_backend()
    task = make_task(f"ruler_qa:qa_1(data={FIXTURES})")
    sample = task.build(backend, 1024, None, 0)
    assert sample.template == TEMPLATE
    user = sample.messages(0)[0]["content"]
    assert user.startswith(
        "Answer the question based on the given documents. Only give me the answer and do not output any "
        "other words.\n\nThe following are given documents.\n\n"
    )
    assert user.endswith(
        "\n\nAnswer the question based on the given documents. Only give me the answer and do not output any "
        "other words.\n\nQuestion: Who built the Kestrel Point lighthouse?"
    )
    assert sample.turns[0].answer_prefix == ANSWER_PREFIX == "Answer:"
    assert sample.answers == ("Ada Fenwick",)
    assert sample.max_new_tokens == 32 and sample.chat is True
    assert task.metric == "contains_any" and task.label() == "ruler_qa:qa_1"
    numbers = [int(n) for n in re.findall(r"(?m)^Document (\d+):$", sample.context)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == sample.metadata["documents"]
    gold = SQUAD["data"][0]["paragraphs"][0]["context"]
    (place,) = sample.metadata["gold_documents"]
    assert f"Document {place}:\n{gold}" in sample.context
    meta = sample.metadata
    assert (meta["subset"], meta["dataset"], meta["target_length"]) == ("qa_1", "squad", 1024)
    assert meta["question_ref"] == "squad.json#data[0].paragraphs[0].qas[0]"


def test_hotpotqa_puts_every_context_paragraph_of_the_question_in():
    sample = RulerQA(subset="qa_2", data=str(FIXTURES / "hotpotqa.json")).build(
        shared_tiny_backend(), 1024, None, 0
    )
    blocks = dict(re.findall(r"(?ms)^Document (\d+):\n(.*?)(?=\n\nDocument \d+:\n|\Z)", sample.context))
    golds = {blocks[str(place)] for place in sample.metadata["gold_documents"]}
    assert golds == {
        "Mira Castell\nMira Castell (1890-1961) was a painter born in the town of Vallon. She is known for her "
        "pictures of fishing boats.",
        "Vallon\nVallon is a small market town in the south. The river Ombre flows through the middle of the town.",
        "Port Sable\nPort Sable is a harbour village with a stone pier. Its fishing fleet landed sardines until 1950.",
    }
    assert sample.answers == ("the Ombre",) and sample.metadata["dataset"] == "hotpotqa"


def test_same_seed_same_question_and_sample_at_every_length():
    backend = shared_tiny_backend()
    task = RulerQA(data=str(FIXTURES))
    short, long = task.build(backend, 1024, None, 3), task.build(backend, 2048, None, 3)
    assert short.question == long.question == "When did the last keeper leave the tower?"
    assert task.build(backend, 1024, None, 3) == short
    assert long.metadata["documents"] > short.metadata["documents"]
    # seeds past the last question cycle through the file again
    assert task.build(backend, 1024, None, 5).question == task.build(backend, 1024, None, 0).question


def test_unusable_questions_are_rejected_by_reference():
    assert RulerQA(data=str(FIXTURES)).rejected() == [
        (
            "squad.json#data[0].paragraphs[1].qas[2]",
            "field 'answers' should be a list of {'text': ...} with at least one answer",
        ),
        ("squad.json#data[0].paragraphs[3]", "a paragraph needs a 'context' string"),
    ]
    assert RulerQA(subset="qa_2", data=str(FIXTURES)).rejected() == [
        ("hotpotqa.json#2", "field 'context' should be a list of [title, [sentences]]")
    ]
    # the impossible question (is_impossible) is left out as RULER leaves it out, not rejected
    questions = [q.question for q in RulerQA(data=str(FIXTURES)).corpus().questions]
    assert (
        "In which city was the first lighthouse lens of Mars made?" not in questions and len(questions) == 5
    )


def test_bad_input_is_one_usage_error(tmp_path):
    backend = shared_tiny_backend()
    with pytest.raises(UsageError, match=r"reads local files only: pass --data squad.json"):
        RulerQA().check(backend, 1024)
    with pytest.raises(UsageError, match="holds none of the files ruler_qa:qa_2 reads: hotpotqa.json"):
        RulerQA(subset="qa_2", data=str(tmp_path)).check(backend, 1024)
    broken = tmp_path / "squad.json"
    broken.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        RulerQA(data=str(broken)).check(backend, 1024)
    broken.write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(UsageError, match='is not a SQuAD file: it needs a "data" list'):
        RulerQA(data=str(broken)).check(backend, 1024)
    with pytest.raises(UsageError, match="unknown subset 'qa_3' of ruler_qa; subsets: qa_1, qa_2"):
        make_task("ruler_qa:qa_3")
    with pytest.raises(UsageError, match="length too short"):
        RulerQA(subset="qa_2", data=str(FIXTURES)).build(backend, 128, None, 0)
    assert RulerQA().with_data(str(FIXTURES)).data == str(FIXTURES)
    assert RulerQA(data="mine").with_data(str(FIXTURES)).data == "mine"


def test_cache_token_follows_the_file(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text((FIXTURES / "squad.json").read_text())
    before = RulerQA(data=str(path)).cache_token()
    path.write_text((FIXTURES / "squad.json").read_text() + "\n")
    assert RulerQA(data=str(path)).cache_token() != before


def test_truncation_and_end_to_end_on_a_tiny_model():
    backend = shared_tiny_backend()
    task = RulerQA(data=str(FIXTURES), max_new_tokens=4)
    sample = task.build(backend, 1024, None, 0)
    cut, record = truncate(backend, sample, 900, "middle")
    assert cut is not None and record["truncation"] == "middle" and cut.metadata["realised_tokens"] <= 900
    generation = backend.generate(sample.request())
    assert generation.output_tokens <= 4
    assert score(task.metric, generation.text, sample.answers) in (0.0, 1.0)
    assert score(task.metric, " ada fenwick, the stonemason", sample.answers) == 1.0
    assert score(task.metric, "Tomas Brierley", sample.answers) == 0.0

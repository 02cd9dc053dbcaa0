"""NeedleBench v2 built from its needles and haystack files: exact lengths, depths, prompts, scoring, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import prompt_tokens, shared_tiny_backend

from longscope.core import UsageError
from longscope.scoring import score, score_with_details
from longscope.tasks import make_task
from longscope.tasks.benchmarks import needlebench
from longscope.tasks.benchmarks.needlebench import PROMPTS, NeedleBench, template_for
from longscope.truncation import truncate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "needlebench"
NEEDLES = [json.loads(line) for line in (FIXTURES / "needles.jsonl").read_text().splitlines()[:4]]


def _task(**params) -> NeedleBench:
    return NeedleBench(data=str(FIXTURES), **params)


@pytest.mark.parametrize(
    ("params", "lengths", "depth"),
    [
        ({"subset": "single"}, (1024, 2048), 0.0),
        ({"subset": "single"}, (1024, 2048), 0.5),
        ({"subset": "single"}, (1024, 2048), 1.0),
        ({"subset": "multi_retrieval", "num_needles": 3}, (1024, 2048), None),
        ({"subset": "multi_retrieval"}, (2048,), None),
        ({"subset": "multi_reasoning", "num_needles": 3}, (2048, 3072), 0.2),
    ],
)
def test_whole_request_is_exactly_the_target_length(params, lengths, depth):
    backend = shared_tiny_backend()
    task = _task(**params)
    for length in lengths:
        sample = task.build(backend, length, depth, 0)
        assert prompt_tokens(backend, sample) + sample.max_new_tokens == length
        assert sample.metadata["realised_tokens"] == length


def test_exact_length_with_a_sentencepiece_style_tokenizer():
    backend = shared_tiny_backend("llama3", "metaspace")
    for seed in (0, 1):
        sample = _task().build(backend, 1536, 0.4, seed)
        assert prompt_tokens(backend, sample) + sample.max_new_tokens == 1536


def test_single_needle_prompt_needle_and_score():
    backend = shared_tiny_backend()
    task = make_task(f"needlebench:single(data={FIXTURES})")
    sample = task.build(backend, 2048, 0.25, 0)
    user = sample.messages(0)[0]["content"]
    assert user.startswith(
        "This is a test of long-text capability. You need to first read the long document below, and then "
        "answer the final question based on the information in the document.\nThe content of the long "
        "document is as follows\n\n<Document>\n"
    )
    assert user.endswith(
        f"</Document>\n\nBased on the information in the document, now please answer: {sample.question}\n"
    )
    needle = next(n for n in NEEDLES if n["retrieval_question"] == sample.question)
    assert f"\n{needle['needle']}\n" in sample.context and sample.answers == (needle["arg2"],)
    assert sample.max_new_tokens == 128 and sample.chat is True and task.metric == "needlebench_keywords"
    meta = sample.metadata
    assert abs(meta["needle_depths"][0] - 0.25) < 0.1
    assert (meta["depth"], meta["depth_percent"], meta["length_level"], meta["language"]) == (
        0.25,
        25,
        "2k",
        "en",
    )
    assert set(task.breakdowns) == {"depth", "length_level"}
    assert task.label() == "needlebench:single" and sample.id == "needlebench:single@2048/d0.25/s0"
    assert score(task.metric, f"The answer is {needle['arg2']}.", sample.answers) == 1.0
    assert score(task.metric, needle["arg2"].lower(), sample.answers) == 0.0  # NeedleBench matches case


def test_same_seed_same_needle_at_every_length_and_depth():
    backend = shared_tiny_backend()
    task = _task()
    questions = {
        task.build(backend, length, depth, 3).question for length in (1024, 2048) for depth in (0.0, 0.7)
    }
    assert len(questions) == 1
    assert task.build(backend, 1024, 0.7, 3) == task.build(backend, 1024, 0.7, 3)


def test_multi_retrieval_joins_the_questions_and_scores_the_share_found():
    backend = shared_tiny_backend()
    task = _task(subset="multi_retrieval")
    assert task.work([1024, 2048], [0.1, 0.5], [0]) == [(1024, None, 0), (2048, None, 0)]
    sample = task.build(backend, 2048, None, 0)
    assert len(sample.answers) == 11 and len(set(sample.answers)) == 11
    assert sample.question.count("?、") == 10 and "?Please answer in the format of 'The " in sample.question
    depths = sample.metadata["needle_depths"]
    assert depths == sorted(depths) and depths[0] < 0.05 and depths[-1] > 0.95
    assert sample.messages(0)[0]["content"].startswith(template_for("multi_retrieval", "en")[:150])
    assert "answer the final questions one by one" in sample.messages(0)[0]["content"]
    reply = ", ".join(sample.answers[:4])
    value, details = score_with_details(task.metric, reply, sample.answers)
    assert value == pytest.approx(4 / 11)
    assert details["needle_1"] == 1.0 and details["needle_5"] == 0.0


def test_multi_reasoning_chain_question_and_boxed_answer():
    backend = shared_tiny_backend()
    task = _task(subset="multi_reasoning", num_needles=3)
    sample = task.build(backend, 2048, 0.2, 0)
    names = json.loads((FIXTURES / "names.json").read_text())["English"].split(",")
    asked = sample.question.split("'")[1]
    assert sample.question == (
        f"Given the context described above, who is the eldest relative that '{asked}' can trace back to in the "
        "context?"
    )
    assert asked in names and sample.answers[0] in names and asked != sample.answers[0]
    user = sample.messages(0)[0]["content"]
    assert user.endswith(
        f"\"So the oldest relative '{asked}' can trace back to in the provided text is \\boxed{{(your answer here)}}.\"\n\n"
    )
    assert "\\boxed{Jasmine Lane}" in user  # NeedleBench's worked example, braces intact
    depths = sample.metadata["needle_depths"]
    assert len(depths) == 3 and depths[0] == pytest.approx(0.2, abs=0.1) and depths[2] - depths[0] > 0.1
    assert task.metric == "needlebench_boxed" and sample.max_new_tokens == 512
    assert score(task.metric, f"So it is \\boxed{{{sample.answers[0]}}}.", sample.answers) == 1.0
    assert score(task.metric, f"The eldest is {sample.answers[0]}.", sample.answers) == 0.0


def test_chinese_prompts_needles_and_haystack():
    backend = shared_tiny_backend()
    sample = _task(language="zh").build(backend, 2048, 0.5, 1)
    user = sample.messages(0)[0]["content"]
    assert user.startswith(
        "这是一个长文本能力的测试，你需要首先阅读下面的长文档，然后根据文档中的信息回答最后的问题。"
    )
    assert user.endswith(f"</文档>\n\n根据文档中的信息，现在请问：{sample.question}\n")
    assert "上藏着什么" in sample.question and "的格式回答" in sample.question
    assert "银行存款" in sample.context or "股票市场" in sample.context
    assert prompt_tokens(backend, sample) + sample.max_new_tokens <= 2048
    assert PROMPTS[("multi_reasoning", "zh")].count("«last_person»") == 1


def test_invalid_needle_and_haystack_lines_are_rejected_by_line():
    assert _task().rejected() == [
        ("needles.jsonl:5", "field 'retrieval_question' is missing"),
        ("needles.jsonl:9", "not valid JSON (Expecting value at column 49)"),
        ("PaulGrahamEssays.jsonl:4", "field 'text' is missing"),
    ]


def test_bad_input_is_one_usage_error(tmp_path):
    backend = shared_tiny_backend()
    with pytest.raises(UsageError, match="unknown subset 'ancestry' of needlebench; subsets: single, "):
        make_task("needlebench:ancestry")
    with pytest.raises(UsageError, match="language must be one of en, zh"):
        make_task("needlebench:single(language=fr)")
    with pytest.raises(UsageError, match="num_needles must be at least 1"):
        NeedleBench(subset="multi_reasoning", num_needles=0)
    with pytest.raises(UsageError, match="NeedleBench reads a directory holding needles.jsonl"):
        NeedleBench(data=str(FIXTURES / "needles.jsonl")).check(backend, 2048)
    partial = tmp_path / "partial"
    shutil.copytree(FIXTURES, partial)
    (partial / "names.json").unlink()
    NeedleBench(data=str(partial)).check(backend, 2048)  # the single-needle task needs no names
    with pytest.raises(UsageError, match="holds no names.json"):
        NeedleBench(subset="multi_reasoning", data=str(partial)).check(backend, 2048)
    with pytest.raises(UsageError, match="lists 10 English names; a chain of 12 needles needs 13"):
        _task(subset="multi_reasoning", num_needles=12).check(backend, 4096)
    with pytest.raises(UsageError, match="needs 20"):
        _task(subset="multi_retrieval", num_needles=20).build(backend, 4096, None, 0)
    with pytest.raises(UsageError, match="leaves no room for the prompt"):
        _task(subset="multi_reasoning").check(backend, 512)
    with pytest.raises(UsageError, match="length too short"):
        _task(subset="multi_retrieval").build(backend, 600, None, 0)


def test_without_data_the_files_come_from_the_hub(monkeypatch):
    asked = []
    files = {
        "needles.jsonl": [
            json.loads(line) for line in (FIXTURES / "needles.jsonl").read_text().splitlines()[:3]
        ],
        "PaulGrahamEssays.jsonl": [
            json.loads(line) for line in (FIXTURES / "PaulGrahamEssays.jsonl").read_text().splitlines()[:3]
        ],
    }

    def fake_hub(args, name=None):
        asked.append(args)
        return files[args["data_files"]]

    monkeypatch.setattr(needlebench, "load_hub", fake_hub)
    needlebench._load.cache_clear()  # hub data is kept per process; start from none and leave none behind
    sample = NeedleBench().build(shared_tiny_backend(), 1024, 0.5, 0)
    assert {a["data_files"] for a in asked} == {"needles.jsonl", "PaulGrahamEssays.jsonl"}
    assert all(a["path"] == "opencompass/NeedleBench" for a in asked)
    assert sample.answers[0] in {n["arg2"] for n in files["needles.jsonl"]}

    def offline(args, name=None):
        raise UsageError("cannot reach the dataset hub for opencompass/NeedleBench (offline?)")

    monkeypatch.setattr(needlebench, "load_hub", offline)
    with pytest.raises(UsageError, match="offline"):
        NeedleBench(language="zh").check(shared_tiny_backend(), 1024)
    needlebench._load.cache_clear()


def test_truncation_and_end_to_end_on_a_tiny_model():
    backend = shared_tiny_backend()
    task = _task(max_new_tokens=4)
    sample = task.build(backend, 1024, 0.5, 0)
    assert sample.max_new_tokens == 4 and task.label() == "needlebench:single(max_new_tokens=4)"
    cut, record = truncate(backend, sample, 800, "middle")
    assert cut is not None and cut.metadata["realised_tokens"] <= 800 and record["truncation"] == "middle"
    generation = backend.generate(sample.request())
    assert generation.output_tokens <= 4
    assert score_with_details(task.metric, generation.text, sample.answers)[0] in (0.0, 1.0)

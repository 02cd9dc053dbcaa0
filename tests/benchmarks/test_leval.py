"""The L-Eval loader on fixture files: prompts, system prompts, caps, turns, open-ended tasks judged, truncation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.judging.setup import NO_JUDGE
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.leval import CLOSED_ENDED, OPEN_SYSTEM, SYSTEM, LEval
from longscope.truncation import request_tokens, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "leval"
CLOSED = FIXTURES / "Closed-ended-tasks"

# task: (scorer, number of turns of the fixture's first document)
EXPECTED = {
    "coursera": ("leval_choice_multi", 2),
    "quality": ("leval_choice", 1),
    "tpo": ("leval_choice", 1),
    "gsm100": ("leval_math", 1),
    "topic_retrieval_longchat": ("leval_exact", 3),
    "codeU": ("leval_code", 1),
    "sci_fi": ("leval_true_false", 2),
}


def _samples(task: LEval):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _first(task: str):
    return _samples(LEval(subset=task, data=str(FIXTURES)))[0]


@pytest.mark.parametrize("task", CLOSED_ENDED)
def test_each_task_in_leval_own_system_prompt_cap_chat_rule_and_metric(task):
    metric, turns = EXPECTED[task]
    sample = _first(task)
    assert LEval(subset=task).metric == metric == sample.metadata["metric"]
    assert (sample.max_new_tokens, sample.chat, sample.system) == (512, True, SYSTEM[task])
    assert len(sample.turns) == turns
    assert sample.metadata["subset"] == task and sample.metadata["benchmark"] == "leval"
    record = json.loads((CLOSED / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert [turn.question for turn in sample.turns] == record["instructions"][:turns]
    assert sample.context == record["input"]


def test_prompt_text_as_leval_writes_it():
    quality = _first("quality")
    user = quality.messages(0)[1]["content"]
    assert user.startswith("Document is as follows. THE KEEPER\n\nThe keeper left the door")
    assert user.endswith(
        "grey cat could find her way home from the rocks. Question: Why did the keeper leave the lighthouse door "
        "open?\n\n (A) He forgot it. \n (B) He wanted the cat to come home. \n (C) The lock was broken. \n "
        "(D) A storm was coming.  \nPlease directly give answer without any additional output or explanation\n"
        " Answer: "
    )
    assert quality.messages(0)[0] == {"role": "system", "content": SYSTEM["quality"]}
    assert (
        SYSTEM["quality"].startswith("Now you are given a very long document.")
        and "sinlge" in SYSTEM["quality"]
    )
    gsm = _first("gsm100")  # the instruction straight after the worked examples
    assert gsm.messages(0)[1]["content"] == gsm.context + "\n\n" + gsm.question
    assert SYSTEM["gsm100"].endswith("Make sure the response is end with The answer is _ . ")


def test_one_sample_per_document_with_a_turn_per_instruction_and_its_output():
    assert [t.answers for t in _first("coursera").turns] == [("AC",), ("C",)]
    topics = _first("topic_retrieval_longchat")
    assert [t.answers for t in topics.turns] == [("Tide pools",), ("Paper kites",), ("Winter bread",)]
    assert "second topic" in topics.messages(1)[1]["content"]
    # sci_fi's outputs read "True [fact: False]": the verdict from the document is the gold.
    assert [t.answers for t in _first("sci_fi").turns] == [("True",), ("False",)]


def test_no_task_named_reads_the_closed_ended_ones_and_scores_per_record():
    task = make_task("leval").with_data(str(FIXTURES))
    assert task.metric == "per_record"
    samples = _samples(task)
    assert {s.metadata["subset"] for s in samples} == set(CLOSED_ENDED)
    assert sorted(task.rejected()) == [
        ("quality.jsonl:2", task.rejected()[0][1]),
        (
            "topic_retrieval_longchat.jsonl:2",
            "2 instructions but 1 outputs; each instruction needs its output",
        ),
    ]
    assert task.rejected()[0][1].startswith("not valid JSON")
    coursera = next(s for s in samples if s.metadata["subset"] == "coursera")
    assert score(task.metric, "A", coursera.answers, coursera.metadata) == 0.25  # one of the two letters


def test_open_ended_tasks_are_judged_against_the_reference_in_l_evals_prompt():
    task = make_task("leval:financial_qa").with_data(str(FIXTURES))
    assert task.needs_judge and task.metric == "judge" and task.rejected() == []
    sample = task.build(shared_tiny_backend(), 0, None, 0)
    assert sample.system == OPEN_SYSTEM and sample.max_new_tokens == 512
    assert sample.metadata["judge_prompt"] == "reference" and sample.answers == ("A restructuring plan.",)
    assert sample.messages(0)[-1]["content"] == (
        "Document is as follows. The CEO announced a restructuring plan on the call. Instruction: You are asked "
        "to act as a member of the Financial Results Conference Call and answer the question: What did the CEO "
        "announce? The suggested output length is around 3 words. Output: "
    )
    assert not make_task("leval").needs_judge


def test_a_file_alone_names_its_task_and_bad_names_are_usage_errors(tmp_path):
    task = make_task("leval").with_data(str(CLOSED / "codeU.jsonl"))
    assert task.subset == "codeU" and task.label() == "leval:codeU" and len(task.records()) == 1
    other = tmp_path / "exam.jsonl"
    other.write_text((CLOSED / "tpo.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot tell which leval subset .*exam\.jsonl holds; name it"):
        make_task("leval").with_data(str(other))
    assert len(make_task("leval:tpo").with_data(str(other)).records()) == 1
    with pytest.raises(UsageError, match=r"unknown subset 'gsm' of leval; subsets: coursera, gsm100"):
        make_task("leval:gsm")
    with pytest.raises(UsageError, match="holds none of the files leval:tpo reads"):
        make_task("leval:tpo").with_data(str(tmp_path)).records()


@pytest.mark.parametrize(("task", "kept"), [("quality", "start"), ("codeU", "end")])
def test_an_over_long_document_loses_its_end_or_for_code_its_start(tmp_path, task, kept):
    record = json.loads((CLOSED / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[0])
    filler = " ".join(f"Filler sentence number {i} says nothing of use." for i in range(300))
    record["input"] = "HEADMARK opening. " + filler + " Closing TAILMARK"
    (tmp_path / f"{task}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    leval = LEval(subset=task, data=str(tmp_path))
    [sample] = _samples(leval)
    backend = shared_tiny_backend()
    window = 900  # the 512-token output cap counts inside it
    assert sample.metadata["realised_tokens"] > window
    cut, info = truncate(backend, sample, window, leval.truncation)
    assert info["truncation"] == leval.truncation == ("right" if kept == "start" else "left")
    assert request_tokens(backend, cut) <= window and info["truncated_tokens"] > 0
    assert cut.context.startswith("HEADMARK") == (kept == "start")
    assert cut.context.endswith("TAILMARK") == (kept == "end")


def test_hub_reads_the_published_file_as_plain_json():
    args = LEval(subset="sci_fi").hub_args()
    assert args["path"] == "json"
    assert args["data_files"]["test"].endswith("/L4NLP/LEval/resolve/main/LEval/Exam/sci_fi.jsonl")
    assert (
        LEval(subset="tv_show_summ")
        .hub_args()["data_files"]["test"]
        .endswith("LEval/Generation/tv_show_summ.jsonl")
    )


def test_end_to_end_through_the_runner(tmp_path):
    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    tasks = [
        "leval:coursera(max_new_tokens=4)",
        "leval:topic_retrieval_longchat(max_new_tokens=4)",
        "leval:financial_qa",
    ]
    run(
        RunConfig(model="hf:tiny", tasks=tasks, data=str(FIXTURES)),
        tmp_path / "run",
        backend=tiny_backend(),
        show_progress=False,
    )
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    ok = [row for row in rows if row.status == "ok"]
    # One row per turn: coursera's document asks 2 instructions, the topic record 3.
    assert sorted((row.task.split(" · ")[0], row.turn) for row in ok) == [
        ("leval:coursera(max_new_tokens=4)", 0),
        ("leval:coursera(max_new_tokens=4)", 1),
        ("leval:topic_retrieval_longchat(max_new_tokens=4)", 0),
        ("leval:topic_retrieval_longchat(max_new_tokens=4)", 1),
        ("leval:topic_retrieval_longchat(max_new_tokens=4)", 2),
    ]
    assert all(row.score is not None and 0.0 <= row.score <= 1.0 for row in ok)
    skipped = sorted(row.error or "" for row in rows if row.status != "ok")
    assert len(skipped) == 3
    assert sum(reason == NO_JUDGE for reason in skipped) == 2  # no --judge: skipped with the reason
    assert any("topic_retrieval_longchat.jsonl:2" in reason for reason in skipped)


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    with pytest.raises(UsageError, match=r"^cannot reach the dataset hub for L4NLP/LEval .*--data PATH$"):
        make_task("leval:coursera").records()
    assert attempts == []

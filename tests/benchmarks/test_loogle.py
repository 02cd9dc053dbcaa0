"""The LooGLE loader on fixture files: one sample per document with a turn per question, prompts, caps, scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.scoring import score_with_details
from longscope.tasks import make_task
from longscope.tasks.benchmarks.loogle import LooGLE
from longscope.truncation import request_tokens, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "loogle"
DATA = FIXTURES / "LooGLE-testdata"

# task: (scorer, max_new_tokens, turns of the fixture's first document)
EXPECTED = {
    "shortdep_qa": ("loogle_rouge_l", 300, 2),
    "longdep_qa": ("loogle_rouge_l", 500, 2),
    "shortdep_cloze": ("loogle_cloze", 50, 2),
    "longdep_summarization": ("loogle_rouge_l", 500, 1),
}


def _samples(task: LooGLE):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _first(task: str):
    return _samples(LooGLE(subset=task, data=str(FIXTURES)))[0]


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_each_task_in_loogle_own_cap_raw_text_and_metric(task):
    metric, cap, turns = EXPECTED[task]
    sample = _first(task)
    assert LooGLE(subset=task).metric == metric == sample.metadata["metric"]
    assert (sample.max_new_tokens, sample.chat, sample.system) == (cap, False, None)
    assert len(sample.turns) == turns and sample.metadata["subset"] == task


def test_prompt_text_as_loogle_writes_it():
    qa = _first("shortdep_qa")
    assert qa.messages(1) == [
        {
            "role": "user",
            "content": "Please answer the question based on the long texts below. \n"
            + qa.context
            + "\nQuestion: What did she design in 1962?\nAnswer: ",
        }
    ]
    cloze = _first("shortdep_cloze")
    text = cloze.messages(0)[0]["content"]
    assert text.startswith(
        "Please fill in the clozes based on the given long texts below. Each of the placeholder '<mask-n>' in "
        "the question could be an entity of Person, Location or Organiocation. The same masks represent the same "
        "entity. Output a json format answer, for example: {'<mask-0>': 'Bob', '<mask-1>': 'Gorrosion Magazine',"
        "'<mask-2>': 'Bethel Horizon'}\nINT. SALON - NIGHT"
    )
    assert text.endswith(
        " Question: The script by <mask-0> opens in a salon; later Britney sings in <mask-1>. What are the masked "
        "entities? \nAnswer:"
    )
    summary = _first("longdep_summarization")
    assert summary.messages(0)[0]["content"] == (
        "Please generate a summary of the below paper. \n" + summary.context + "\n Summarization: "
    )


def test_each_question_is_a_turn_with_its_gold_and_clozes_keep_their_masks():
    assert [t.answers for t in _first("shortdep_qa").turns] == [
        ("She was born in Tarifa, Spain.",),
        ("The harbour library of Tarifa.",),
    ]
    long = _first("longdep_qa")
    assert long.metadata["question_types"] == ["computation", "timeline_reorder"]
    cloze = _first("shortdep_cloze")
    assert json.loads(cloze.turns[0].answers[0]) == {"<mask-0>": "Cerina Aragones", "<mask-1>": "Kentwood"}
    value, details = score_with_details(
        "loogle_cloze", "{'<mask-0>': 'Cerina Aragones', '<mask-1>': 'Tarifa'}", cloze.turns[0].answers
    )
    assert value == 0.5 and details == {"partial_match": 0.5}


def test_broken_and_misshapen_records_are_rejected_by_line():
    task = LooGLE(data=str(FIXTURES))
    assert task.metric == "per_record"
    reasons = dict(task.rejected())
    assert reasons["longdep_qa.jsonl:2"].startswith("not valid JSON")
    assert (
        reasons["shortdep_cloze.jsonl:2"]
        == "qa pair 1: a cloze answer 'A' should map each mask to its entity"
    )
    assert len(reasons) == 2
    samples = _samples(task)
    assert {s.metadata["subset"] for s in samples} == set(EXPECTED) and len(samples) == 4
    qa = next(s for s in samples if s.metadata["subset"] == "shortdep_qa")
    # "born in Tarifa" recalls 2 of the 6 distinct words of "She was born in Tarifa, Spain": punctuation is not
    # removed, so "Tarifa," is another word than "Tarifa".
    assert score_with_details(task.metric, "born in Tarifa", qa.answers, qa.metadata)[0] == pytest.approx(
        1 / 3
    )


def test_unreadable_question_pairs_are_rejected(tmp_path):
    rows = [
        {"input": "doc", "title": "a", "qa_pairs": "[{'Q': 'x', 'A': ", "output": "none"},
        {"input": "doc", "title": "b", "qa_pairs": "[]", "output": "none"},
        {"input": "doc", "title": "c", "qa_pairs": "[{'Q': 'x', 'A': ''}]", "output": "none"},
        {"input": "doc", "title": "d", "qa_pairs": "[{'Q': 'x', 'A': 'y'}]", "output": "none"},
    ]
    (tmp_path / "shortdep_qa.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    task = LooGLE(subset="shortdep_qa", data=str(tmp_path))
    assert len(task.records()) == 1  # the good record runs; the bad ones are reported
    assert [reason for _, reason in task.rejected()] == [
        "field 'qa_pairs' is not a readable list of question-answer pairs",
        "field 'qa_pairs' holds no question-answer pairs",
        "qa pair 1 has no answer 'A'",
    ]


def test_a_file_alone_names_its_task_and_bad_names_are_usage_errors(tmp_path):
    task = make_task("loogle").with_data(str(DATA / "shortdep_cloze.jsonl"))
    assert task.label() == "loogle:shortdep_cloze" and len(task.records()) == 1
    other = tmp_path / "cloze.jsonl"
    other.write_text((DATA / "shortdep_cloze.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot tell which loogle subset .*cloze\.jsonl holds"):
        make_task("loogle").with_data(str(other))
    with pytest.raises(UsageError, match=r"unknown subset 'longdep' of loogle; subsets: shortdep_qa"):
        make_task("loogle:longdep")


def test_an_over_long_document_is_cut_in_the_middle(tmp_path):
    record = json.loads((DATA / "shortdep_qa.jsonl").read_text(encoding="utf-8").splitlines()[0])
    filler = " ".join(f"Filler sentence number {i} says nothing of use." for i in range(300))
    record["input"] = "HEADMARK opening. " + filler + " Closing TAILMARK"
    (tmp_path / "shortdep_qa.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    task = LooGLE(subset="shortdep_qa", data=str(tmp_path))
    [sample] = _samples(task)
    backend = shared_tiny_backend()
    window = 700  # the 300-token output cap counts inside it
    assert sample.metadata["realised_tokens"] > window and task.truncation == "middle"
    cut, info = truncate(backend, sample, window, task.truncation)
    assert info["truncation"] == "middle" and request_tokens(backend, cut) <= window
    assert cut.context.startswith("HEADMARK") and cut.context.endswith("TAILMARK")
    assert len(cut.turns) == 2  # every question still asked over the cut document


def test_hub_reads_the_task_file_as_plain_json():
    args = LooGLE(subset="longdep_qa").hub_args()
    assert args["path"] == "json"
    assert (
        args["data_files"]["test"]
        == "https://huggingface.co/datasets/bigai-nlco/LooGLE/resolve/main/longdep_qa.jsonl"
    )


def test_end_to_end_through_the_runner(tmp_path):
    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    tasks = ["loogle:shortdep_qa(max_new_tokens=4)", "loogle:shortdep_cloze(max_new_tokens=4)"]
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
    assert len(ok) == 4  # two questions on each document
    assert all(row.score is not None and 0.0 <= row.score <= 1.0 for row in ok)
    [skipped] = [row for row in rows if row.status != "ok"]
    assert "shortdep_cloze.jsonl:2" in (skipped.error or "")


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    with pytest.raises(
        UsageError, match=r"^cannot reach the dataset hub for bigai-nlco/LooGLE .*--data PATH$"
    ):
        make_task("loogle:shortdep_qa").records()
    assert attempts == []

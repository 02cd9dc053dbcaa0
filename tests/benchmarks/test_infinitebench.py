"""The InfiniteBench loader on fixture files: its open-model prompts, caps, raw text, metrics, truncation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.infinitebench import InfiniteBench
from longscope.truncation import request_tokens, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "infinitebench"

# task: (scorer, max_new_tokens)
EXPECTED = {
    "passkey": ("infinitebench_first_int", 6),
    "number_string": ("infinitebench_first_int", 12),
    "kv_retrieval": ("infinitebench_kv", 50),
    "longbook_sum_eng": ("infinitebench_rouge_lsum", 1200),
    "longbook_choice_eng": ("infinitebench_choice", 40),
    "longbook_qa_eng": ("qa_f1", 40),
    "longbook_qa_chn": ("infinitebench_qa_f1_zh", 40),
    "longdialogue_qa_eng": ("infinitebench_dialogue", 40),
    "math_find": ("infinitebench_math_find", 3),
    "math_calc": ("infinitebench_math_calc", 30000),
    "code_run": ("infinitebench_code_run", 5),
    "code_debug": ("infinitebench_code_debug", 5),
}


def _samples(task: InfiniteBench):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _first(task: str):
    return _samples(InfiniteBench(subset=task, data=str(FIXTURES)))[0]


def _prompt(sample) -> str:
    [message] = sample.messages(0)
    return message["content"]


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_each_task_in_infinitebench_own_cap_raw_text_and_metric(task):
    metric, cap = EXPECTED[task]
    sample = _first(task)
    assert InfiniteBench(subset=task).metric == metric == sample.metadata["metric"]
    assert (sample.max_new_tokens, sample.chat, sample.system) == (cap, False, None)
    assert sample.metadata["subset"] == task and len(sample.turns) == 1
    assert sample.context in _prompt(sample)


def test_prompt_text_as_infinitebench_writes_it():
    passkey = _first("passkey")
    assert _prompt(passkey) == (
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz "
        f"you about the important information.\n\n{passkey.context}\n\nWhat is the pass key?\n\nThe pass key is"
    )
    choice = _first("longbook_choice_eng")
    assert _prompt(choice).endswith(
        "\n\nQuestion: Where did Georgie walk the dog?\nA. Beach\nB. Park\nC. Snowfield\nD. Harbour\n\n"
        "The letter of the correct answer is"
    )
    assert choice.answers == ("Snowfield", "C")  # the option and its letter, as InfiniteBench's get_answer
    run = _first("code_run")
    assert _prompt(run).startswith("There is a function called func_1 in the following Python code.\n\n")
    assert _prompt(run).endswith("Please compute the exact value of func_1(1). The value of func_1(1) is")
    assert run.question == "func_1(1)" and run.answers == ("4",)
    find = _first("math_find")
    assert _prompt(find) == (
        "What is the largest number in the following list?\n\n[12, 88, 3, 41, 7]\n\nYou should answer with only "
        "one number, no other words. The largest number of the list is: "
    )
    debug = _first("code_debug")
    assert _prompt(debug).endswith(
        "\n\nOptions:\nA. repack_carchive\nB. Configer._set_option\nC. main\nD. parse_args\n\nThe correct option is:"
    )
    assert debug.answers == ("Configer._set_option", "B")
    assert _first("math_calc").answers == ("3", "7", "5", "15")  # the list inside the answer list
    assert _prompt(_first("longbook_qa_chn")).endswith("\n\n问题：谁在商家堡相遇？\n答案：")


def test_broken_and_unusable_records_are_rejected_by_line_with_reasons():
    task = InfiniteBench(data=str(FIXTURES))
    assert task.metric == "per_record"
    reasons = dict(task.rejected())
    assert reasons["passkey.jsonl:3"].startswith("not valid JSON")
    assert reasons["longbook_choice_eng.jsonl:2"] == "field 'options' should be a list of 4 strings"
    assert reasons["math_find.jsonl:2"].startswith("field 'input' does not say which number")
    assert reasons["code_run.jsonl:2"].startswith("field 'input' names no call")
    assert len(reasons) == 4
    samples = _samples(task)
    assert len(samples) == 13 and {s.metadata["subset"] for s in samples} == set(EXPECTED)


def test_a_record_whose_answer_is_not_an_option_is_rejected(tmp_path):
    record = {
        "id": 7,
        "context": "c",
        "input": "q",
        "answer": ["Moon"],
        "options": ["Sun", "Star", "Sky", "Sea"],
    }
    good = {**record, "id": 8, "answer": ["Sea"]}
    lines = [json.dumps(record), json.dumps(good)]
    (tmp_path / "longbook_choice_eng.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = InfiniteBench(subset="longbook_choice_eng", data=str(tmp_path))
    assert len(task.records()) == 1 and task.rejected() == [
        ("longbook_choice_eng.jsonl:1", "the answer is not one of the options")
    ]


def test_hand_written_replies_score_as_worked_out():
    def check(task: str, reply: str) -> float:
        sample = _first(task)
        return score(sample.metadata["metric"], reply, sample.answers, sample.metadata)

    assert check("passkey", " 71432.") == 1.0
    assert check("kv_retrieval", ' "a9e1d3c2-11ab-4c3d"') == 1.0
    assert check("longbook_choice_eng", " C") == 1.0 and check("longbook_choice_eng", " B") == 0.0
    assert check("code_debug", " B. Configer") == 1.0
    assert check("code_run", " 4") == 1.0
    assert check("math_find", " 88") == 1.0
    assert check("math_calc", " [3, 7, 6, 15]") == 0.5
    assert check("longdialogue_qa_eng", " Ace, of course") == 1.0


def test_a_file_alone_names_its_task_and_bad_names_are_usage_errors(tmp_path):
    task = make_task("infinitebench").with_data(str(FIXTURES / "kv_retrieval.jsonl"))
    assert task.label() == "infinitebench:kv_retrieval" and len(task.records()) == 1
    other = tmp_path / "retrieval.jsonl"
    other.write_text((FIXTURES / "passkey.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot tell which infinitebench subset .*retrieval\.jsonl holds"):
        make_task("infinitebench").with_data(str(other))
    with pytest.raises(UsageError, match=r"unknown subset 'pass_key' of infinitebench; subsets: passkey, "):
        make_task("infinitebench:pass_key")


def test_an_over_long_context_is_cut_in_the_middle(tmp_path):
    record = json.loads((FIXTURES / "passkey.jsonl").read_text(encoding="utf-8").splitlines()[0])
    filler = " ".join(f"Filler sentence number {i} says nothing of use." for i in range(300))
    record["context"] = "HEADMARK opening. " + filler + " Closing TAILMARK"
    (tmp_path / "passkey.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    task = InfiniteBench(subset="passkey", data=str(tmp_path))
    [sample] = _samples(task)
    backend = shared_tiny_backend()
    window = 400
    assert sample.metadata["realised_tokens"] > window and task.truncation == "middle"
    cut, info = truncate(backend, sample, window, task.truncation)
    assert info["truncation"] == "middle" and request_tokens(backend, cut) <= window
    assert cut.context.startswith("HEADMARK") and cut.context.endswith("TAILMARK")
    assert "Filler sentence number 150 " not in cut.context
    assert _prompt(cut).endswith("\n\nWhat is the pass key?\n\nThe pass key is")


def test_hub_reads_one_task_file_as_plain_json():
    args = InfiniteBench(subset="passkey").hub_args()
    assert args == {
        "path": "json",
        "data_files": {
            "test": "https://huggingface.co/datasets/xinrongzhang2022/InfiniteBench/resolve/main/passkey.jsonl"
        },
        "split": "test",
    }


def test_end_to_end_through_the_runner(tmp_path):
    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    config = RunConfig(
        model="hf:tiny", tasks=["infinitebench:passkey", "infinitebench:code_run"], data=str(FIXTURES)
    )
    run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    ok = [row for row in rows if row.status == "ok"]
    assert sorted(row.task for row in ok) == ["infinitebench:code_run"] + ["infinitebench:passkey"] * 2
    assert all(row.score in (0.0, 1.0) for row in ok)
    assert all(row.output_tokens <= 6 for row in ok)  # passkey's cap of 6, code_run's of 5
    skipped = sorted(row.error or "" for row in rows if row.status != "ok")
    assert len(skipped) == 2 and "passkey.jsonl:3" in skipped[1] and "code_run.jsonl:2" in skipped[0]


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    with pytest.raises(
        UsageError, match=r"^cannot reach the dataset hub for xinrongzhang2022/InfiniteBench .*--data PATH$"
    ):
        make_task("infinitebench:passkey").records()
    assert attempts == []

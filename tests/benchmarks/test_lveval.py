"""The LV-Eval loader on fixture files: datasets × length levels, prompts, caps, gated metrics, breakdowns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.scoring import score, score_with_details
from longscope.tasks import make_task
from longscope.tasks.benchmarks.lveval import LEVELS, LVEval
from longscope.truncation import request_tokens, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lveval"


def _samples(task: LVEval):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _task(spec: str) -> LVEval:
    return make_task(spec).with_data(str(FIXTURES))


def test_a_dataset_reads_every_level_found_and_breaks_down_by_level():
    task = _task("lveval:hotpotwikiqa_mixup")
    samples = _samples(task)
    assert [s.metadata["length_level"] for s in samples] == ["16k", "32k"]
    assert LVEval.breakdowns == ("length_level",)
    assert [s.metadata["record"] for s in samples] == [
        "hotpotwikiqa_mixup_16k.jsonl:1",
        "hotpotwikiqa_mixup_32k.jsonl:1",
    ]
    assert {(s.max_new_tokens, s.chat, s.system) for s in samples} == {(64, True, None)}
    assert {s.metadata["metric"] for s in samples} == {task.metric} == {"lveval_gated_f1"}
    assert samples[0].metadata["answer_keywords"] == "Wexcombe" and samples[0].metadata["language"] == "en"


@pytest.mark.parametrize(
    ("spec", "levels"),
    [
        ("lveval:hotpotwikiqa_mixup(level=16k)", ["16k"]),
        ("lveval:hotpotwikiqa_mixup(level=32K)", ["32k"]),
        ("lveval:hotpotwikiqa_mixup_32k", ["32k"]),
        ("lveval(level=16k)", ["16k", "16k", "16k"]),
        ("lveval", ["16k", "32k", "16k", "16k"]),
    ],
)
def test_levels_are_chosen_by_parameter_or_name(spec, levels):
    assert [s.metadata["length_level"] for s in _samples(_task(spec))] == levels


def test_level_and_dataset_names_are_checked():
    assert make_task("lveval:hotpotwikiqa_mixup_32k").label() == "lveval:hotpotwikiqa_mixup(level=32k)"
    with pytest.raises(
        UsageError, match=r"unknown LV-Eval length level '20k'; levels: 16k, 32k, 64k, 128k, 256k"
    ):
        make_task("lveval:cmrc_mixup(level=20k)")
    with pytest.raises(UsageError, match=r"is level 16k, not level=32k"):
        make_task("lveval:cmrc_mixup_16k(level=32k)")
    with pytest.raises(UsageError, match=r"unknown subset 'hotpot' of lveval; subsets: hotpotwikiqa_mixup"):
        make_task("lveval:hotpot")
    with pytest.raises(UsageError, match="holds none of the files lveval:lic_mixup reads"):
        _task("lveval:lic_mixup").records()
    assert LEVELS == ("16k", "32k", "64k", "128k", "256k")


def test_prompt_text_caps_and_metrics_as_lveval_writes_them():
    [hotpot] = _samples(_task("lveval:hotpotwikiqa_mixup(level=16k)"))
    assert hotpot.messages(0) == [
        {
            "role": "user",
            "content": "Answer the question based on the given passages. Questions and answers are only relevant to "
            "some passages. Only give me the answer and do not output any other explanation and evidence.\n\n"
            f"Article: {hotpot.context}\n\nPlease answer the following question based on the above passages. "
            "Questions and answers are only relevant to some passages. Only give me the answer and do not output "
            "any other explanation and evidence.\n\nQuestion: Where was the designer of the Orlen Bridge born?\n"
            "Answer:",
        }
    ]
    [fact] = _samples(_task("lveval:factrecall_zh"))
    assert (
        fact.max_new_tokens == 16
        and fact.metadata["metric"] == "lveval_f1_zh"
        and fact.metadata["language"] == "zh"
    )
    assert fact.messages(0)[0]["content"].endswith(
        "\n\n问题：被世人广泛推崇为现代物理学奠基人的科学家叫什么名字？\n回答："
    )
    [dureader] = _samples(_task("lveval:dureader_mixup"))  # read from dureader_mixup/dureader_mixup_16k.jsonl
    assert dureader.metadata["metric"] == "lveval_rouge_zh" and dureader.metadata["answer_keywords"] == ""


def test_broken_and_unanswered_records_are_rejected_by_line():
    task = _task("lveval")
    assert task.metric == "per_record"
    reasons = task.rejected()
    assert [ref for ref, _ in reasons] == ["hotpotwikiqa_mixup_16k.jsonl:2", "hotpotwikiqa_mixup_16k.jsonl:3"]
    assert reasons[0][1].startswith("not valid JSON") and reasons[1][1] == "no gold answer"


def test_hand_written_replies_score_through_the_gate():
    [hotpot] = _samples(_task("lveval:hotpotwikiqa_mixup(level=32k)"))
    assert score("per_record", "Wexcombe", hotpot.answers, hotpot.metadata) == 1.0
    # The confusing fact's town: no keyword recalled, so 0 whatever the overlap.
    value, details = score_with_details(
        hotpot.metadata["metric"], "the town of Wexbury", hotpot.answers, hotpot.metadata
    )
    assert value == 0.0 and details["keyword_recall"] == 0.0
    [fact] = _samples(_task("lveval:factrecall_zh"))
    assert score(fact.metadata["metric"], "贝多芬", fact.answers, fact.metadata) == 1.0


def test_a_file_alone_says_its_dataset_and_level_by_name(tmp_path):
    task = make_task("lveval").with_data(str(FIXTURES / "factrecall_zh_16k.jsonl"))
    assert (task.subset, task.level, task.label()) == (
        "factrecall_zh",
        "16k",
        "lveval:factrecall_zh(level=16k)",
    )
    [sample] = _samples(task)
    assert sample.metadata["length_level"] == "16k"
    other = tmp_path / "facts.jsonl"
    other.write_text((FIXTURES / "factrecall_zh_16k.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot tell which LV-Eval dataset .*facts\.jsonl holds"):
        make_task("lveval").with_data(str(other))


def test_an_over_long_context_is_cut_in_the_middle(tmp_path):
    record = json.loads(
        (FIXTURES / "hotpotwikiqa_mixup_16k.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )
    filler = " ".join(f"Filler sentence number {i} says nothing of use." for i in range(300))
    record["context"] = "HEADMARK opening. " + filler + " Closing TAILMARK"
    (tmp_path / "hotpotwikiqa_mixup_16k.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    task = make_task("lveval:hotpotwikiqa_mixup(level=16k)").with_data(str(tmp_path))
    [sample] = _samples(task)
    backend = shared_tiny_backend()
    window = 500
    assert sample.metadata["realised_tokens"] > window and task.truncation == "middle"
    cut, info = truncate(backend, sample, window, task.truncation)
    assert info["truncation"] == "middle" and request_tokens(backend, cut) <= window
    assert cut.context.startswith("HEADMARK") and cut.context.endswith("TAILMARK")


def test_hub_reads_one_level_file_out_of_the_dataset_zip():
    args = make_task("lveval:cmrc_mixup(level=64k)").hub_args()
    assert args["path"] == "json"
    assert args["data_files"]["test"] == (
        "zip://cmrc_mixup/cmrc_mixup_64k.jsonl::https://huggingface.co/datasets/Infinigence/LVEval/resolve/main/cmrc_mixup.zip"
    )


def test_end_to_end_through_the_runner(tmp_path):
    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    config = RunConfig(
        model="hf:tiny", tasks=["lveval:hotpotwikiqa_mixup(max_new_tokens=4)"], data=str(FIXTURES)
    )
    run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    ok = [row for row in rows if row.status == "ok"]
    assert len(ok) == 2 and all(row.score is not None and 0.0 <= row.score <= 1.0 for row in ok)
    assert len([row for row in rows if row.status != "ok"]) == 2  # the broken line and the unanswered record


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    with pytest.raises(
        UsageError, match=r"^cannot reach the dataset hub for Infinigence/LVEval .*--data PATH$"
    ):
        make_task("lveval:factrecall_en(level=16k)").records()
    assert attempts == []

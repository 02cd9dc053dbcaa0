"""LongBench and LongBench-E loaders on fixture files: prompts, caps, chat rule, metrics, breakdowns, truncation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from benchmarks.offline import force_offline
from longscope.core import UsageError
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.longbench import PROMPTS, LongBench
from longscope.truncation import request_tokens, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "longbench"

# dataset: (scorer, max_new_tokens, fed through the chat template)
EXPECTED = {
    "hotpotqa": ("qa_f1", 32, True),
    "multifieldqa_zh": ("qa_f1_zh", 64, True),
    "gov_report": ("longbench_rouge_l", 512, True),
    "dureader": ("longbench_rouge_l_zh", 128, True),
    "trec": ("classification_first_line", 64, False),
    "triviaqa": ("qa_f1_first_line", 32, False),
    "passage_count": ("count", 32, True),
    "passage_retrieval_en": ("retrieval", 32, True),
    "passage_retrieval_zh": ("retrieval_zh", 32, True),
    "lcc": ("code_sim", 64, False),
}


def _records(name: str) -> list[dict]:
    lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]  # not the deliberately broken line


def _samples(task: LongBench):
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_each_fixture_in_longbench_own_prompt_cap_chat_rule_and_metric(dataset):
    metric, cap, chat = EXPECTED[dataset]
    task = make_task(f"longbench:{dataset}").with_data(str(FIXTURES))
    assert task.metric == metric
    samples = _samples(task)
    records = _records(dataset)
    assert len(samples) == len(records) == 3
    backend = shared_tiny_backend()
    for sample, record in zip(samples, records, strict=True):
        prompt = sample.messages(0)[0]["content"]
        assert prompt == PROMPTS[dataset].format(**record)  # what LongBench's pred.py builds
        assert record["context"] in prompt and record["input"] in prompt
        assert (sample.max_new_tokens, sample.chat) == (cap, chat)
        assert sample.answers == tuple(record["answers"])
        meta = sample.metadata
        assert (meta["dataset"], meta["metric"], meta["benchmark"], meta["subset"]) == (
            dataset,
            metric,
            "longbench",
            dataset,
        )
        assert meta["all_classes"] == record["all_classes"] and "length_range" not in meta
        rendered = backend.render(sample.messages(0), "", chat)
        assert meta["prompt_tokens"] == backend.count_tokens(rendered)
        assert sample.id == f"longbench:{dataset}/{record['_id']}"


def test_prompt_text_as_longbench_writes_it():
    hotpot, trec = _samples(LongBench(subset="hotpotqa", data=str(FIXTURES)))[0], None
    record = _records("hotpotqa")[0]
    assert hotpot.messages(0)[0]["content"] == (
        "Answer the question based on the given passages. Only give me the answer and do not output any other "
        "words.\n\nThe following are given passages.\n"
        + record["context"]
        + "\n\nAnswer the question based on "
        "the given passages. Only give me the answer and do not output any other words.\n\nQuestion: "
        + record["input"]
        + "\nAnswer:"
    )
    trec = _samples(LongBench(subset="trec", data=str(FIXTURES)))[1]
    record = _records("trec")[1]
    assert trec.messages(0)[0]["content"] == (
        "Please determine the type of the question below. Here are some examples of questions.\n\n"
        + record["context"]
        + "\n"
        + record["input"]
    )
    # Fed as raw text: no chat-template markers around it.
    rendered = shared_tiny_backend().render(trec.messages(0), "", trec.chat)
    assert "<|im_start|>" not in rendered and rendered.endswith(record["input"])


def test_broken_line_is_rejected_and_the_rest_load():
    task = LongBench(subset="hotpotqa", data=str(FIXTURES))
    assert len(task.records()) == 3
    [(ref, reason)] = task.rejected()
    assert ref == "hotpotqa.jsonl:3" and reason.startswith("not valid JSON")


def test_longbench_e_length_ranges_from_the_length_field():
    for task in (
        LongBench(subset="hotpotqa_e", data=str(FIXTURES)),
        LongBench(data=str(FIXTURES / "hotpotqa_e.jsonl")),  # the file name says it is LongBench-E
        LongBench(e=True, data=str(FIXTURES)),
    ):
        samples = _samples(task)
        assert [s.metadata["length_range"] for s in samples] == ["0-4k", "4-8k", "8k+"]
        assert {s.metadata["dataset"] for s in samples} == {"hotpotqa_e"}
        assert {(s.max_new_tokens, s.chat) for s in samples} == {(32, True)}
    assert LongBench(subset="hotpotqa_e").metric == "qa_f1"


def test_no_subset_reads_every_v1_dataset_present_and_scores_per_record():
    task = LongBench(data=str(FIXTURES))
    assert task.metric == "per_record"
    samples = _samples(task)
    assert len(samples) == 3 * len(EXPECTED)  # hotpotqa_e is LongBench-E, not read here
    assert {s.metadata["dataset"] for s in samples} == set(EXPECTED)
    assert {s.metadata["category"] for s in samples} == {
        "single-doc QA",
        "multi-doc QA",
        "summarization",
        "few-shot learning",
        "synthetic",
        "code completion",
    }
    trec = next(s for s in samples if s.metadata["dataset"] == "trec")
    assert score(task.metric, "City\nType: Date", trec.answers, trec.metadata) == 1.0
    assert set(LongBench.breakdowns) >= {"dataset", "length_range"}


def test_subsets_and_parameters_on_the_command_line():
    with pytest.raises(
        UsageError, match=r"unknown subset 'hotpot' of longbench; subsets: narrativeqa, qasper"
    ):
        make_task("longbench:hotpot")
    assert make_task("longbench:hotpotqa(limit=2)").limit == 2
    assert len(LongBench.subsets) == 21 + 13
    with pytest.raises(UsageError, match="longbench:trec_e"):
        make_task("longbench:trec(e=true)")


def test_hand_written_predictions_score_as_worked_out():
    def first(dataset: str):
        return _samples(LongBench(subset=dataset, data=str(FIXTURES)))[0]

    def scored(dataset: str, prediction: str) -> float:
        sample = first(dataset)
        return score(LongBench(subset=dataset).metric, prediction, sample.answers, sample.metadata)

    # "the vessel river" -> [vessel, river] against [vessel]: P = 1/2, R = 1, F1 = 2/3.
    assert scored("hotpotqa", "The Vessel river") == pytest.approx(2 / 3)
    assert scored("multifieldqa_zh", "1998年") == 1.0
    # The rouge package's F is 2PR / (P + R + 1e-8): an exact copy scores 2 / (2 + 1e-8), as in LongBench.
    assert scored("dureader", "水温八十度，先温杯再放茶叶后注水。") == 2 / (2 + 1e-8)
    # Gold has 15 words; the prediction's 4 are its first 4, in order: P = 1, R = 4/15, F = 8/19.
    assert scored("gov_report", "The agency found late") == pytest.approx(8 / 19)
    # Case is kept: "the AGENCY" shares only "found" and "late" with the gold.
    assert scored("gov_report", "the AGENCY found late") == pytest.approx(
        2 * (1 / 2 * 2 / 15) / (1 / 2 + 2 / 15)
    )
    # trec's first line names City only (1); the second line's Date is not read.
    assert scored("trec", "City\nQuestion: When?\nType: Date") == 1.0
    assert scored("trec", "Date or City") == 0.5
    assert scored("triviaqa", "\nLake Ossen\n\nPassage: more") == 1.0
    assert scored("passage_count", "There are 2 unique paragraphs, not 3") == 0.5
    assert scored("passage_retrieval_en", "Paragraph 2") == 1.0
    assert scored("passage_retrieval_zh", "答案是：段落2，也可能是段落1") == 0.5
    # difflib matches "    return a " and " b", 15 of the 16 + 16 characters: 30/32 = 93.75%, printed as 94.
    assert scored("lcc", "    return a + b\n") == 0.94
    # A line holding "#" anywhere is passed over, and no other line is left: 0.
    assert scored("lcc", "    return a * b  # product") == 0.0


def test_an_over_long_record_is_cut_in_the_middle(tmp_path):
    record = _records("hotpotqa")[0]
    filler = " ".join(f"Filler sentence number {i} says nothing of use." for i in range(300))
    record["context"] = "HEADMARK opening passage. " + filler + " Closing passage TAILMARK"
    (tmp_path / "hotpotqa.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    task = LongBench(subset="hotpotqa", data=str(tmp_path))
    backend = shared_tiny_backend()
    [sample] = _samples(task)
    window = 400
    assert sample.metadata["realised_tokens"] > window
    kept, info = truncate(backend, sample, window, task.truncation)
    assert task.truncation == "middle" and info["truncation"] == "middle" and info["truncated_tokens"] > 0
    assert request_tokens(backend, kept) <= window
    assert kept.context.startswith("HEADMARK") and kept.context.endswith("TAILMARK")
    assert "Filler sentence number 150 " not in kept.context
    assert kept.messages(0)[0]["content"].endswith(f"Question: {record['input']}\nAnswer:")


def test_end_to_end_through_the_runner(tmp_path):
    from longscope.runner import RunConfig, run
    from longscope.store import RunStore

    config = RunConfig(
        model="hf:tiny", tasks=["longbench:trec(limit=2)", "longbench:hotpotqa"], data=str(FIXTURES)
    )
    run(config, tmp_path / "run", backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    ok = [row for row in rows if row.status == "ok"]
    assert len(ok) == 5
    assert all(row.score is not None and 0.0 <= row.score <= 1.0 for row in ok)
    assert {row.length for row in ok} == {1024}  # each row at its record's length bucket
    assert {row.task for row in ok} == {"longbench:trec(limit=2)", "longbench:hotpotqa"}
    rejected = [row for row in rows if row.status != "ok"]
    assert len(rejected) == 1 and re.search(r"hotpotqa\.jsonl:3", rejected[0].error or "")


def test_hub_offline_says_to_pass_data(monkeypatch, tmp_path):
    attempts = force_offline(monkeypatch, tmp_path)
    task = make_task("longbench:hotpotqa")
    assert task.hub_args()["data_files"]["test"].startswith("zip://data/hotpotqa.jsonl::https://")
    with pytest.raises(UsageError, match=r"^cannot reach the dataset hub for THUDM/LongBench .*--data PATH$"):
        task.records()
    assert attempts == []


def test_every_dataset_is_scored_by_a_registered_scorer_and_samsum_stops_at_a_newline(tmp_path):
    from longscope.scoring import SCORERS

    for dataset in PROMPTS:
        assert LongBench.dataset_metric(dataset) in SCORERS
    assert LongBench(subset="samsum").metric == "longbench_rouge_l_first_line"
    assert LongBench(subset="vcsum").metric == "longbench_rouge_l_zh"
    record = {**_records("gov_report")[0], "dataset": "samsum", "input": "Dialogue: A: hi\nSummary: "}
    (tmp_path / "samsum.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (tmp_path / "gov_report.jsonl").write_text(json.dumps(_records("gov_report")[0]) + "\n", encoding="utf-8")
    [samsum] = _samples(LongBench(subset="samsum", data=str(tmp_path)))
    [gov] = _samples(LongBench(subset="gov_report", data=str(tmp_path)))
    assert samsum.metadata["stop"] == ["\n"] and "stop" not in gov.metadata
    assert (samsum.max_new_tokens, samsum.chat) == (128, False)


def test_the_sample_format_is_part_of_the_cache_key():
    from longscope.tasks.benchmarks.longbench import SAMPLE_FORMAT

    token = LongBench(subset="hotpotqa", data=str(FIXTURES)).cache_token()
    assert token.endswith(f"|samples-v{SAMPLE_FORMAT}")


def test_tasks_detail_prints_where_scoring_departs_from_longbench():
    from longscope.listing import task_detail

    text = task_detail("longbench", LongBench, 100)
    assert "Against the benchmark's official code" in text
    assert "min_new_tokens=1" in text and "'Type: Other location'" in text
    for departure in LongBench.departures:
        assert departure.split()[0] in text


def _row(task: str, sample_id: str, value: float | None, status: str = "ok"):
    from longscope.core import Result

    return Result(
        key=sample_id, sample_id=sample_id, task=task, length=1024, depth=None, seed=0, turn=0, status=status,
        score=value,
    )  # fmt: skip


def test_published_scores_are_per_dataset_as_eval_prints_them():
    from longscope.analysis.benchmarks import benchmark_reports, published_score

    # hotpotqa: mean of 1/3, 1/3, 0 -> 22.2222 -> printed 22.22; trec: 1, 0.5 -> 75.0; a failed row is left out.
    scores = {"h1": ("hotpotqa", 1 / 3), "h2": ("hotpotqa", 1 / 3), "h3": ("hotpotqa", 0.0)}
    scores |= {"t1": ("trec", 1.0), "t2": ("trec", 0.5), "t3": ("trec", None)}
    metadata = {key: {"benchmark": "longbench", "dataset": dataset} for key, (dataset, _) in scores.items()}
    for one_task in (True, False):  # run as `longbench`, or as longbench:hotpotqa and longbench:trec
        rows = [
            _row(
                "longbench" if one_task else f"longbench:{dataset}",
                key,
                value,
                "ok" if value is not None else "failed",
            )
            for key, (dataset, value) in scores.items()
        ]
        [report] = benchmark_reports(rows, metadata)
        assert report.published_scores() == {"hotpotqa": 22.22, "trec": 75.0}
        # The average of the printed scores: (22.22 + 75.0) / 2 = 48.61.
        assert report.published_average() == 48.61
    assert published_score("longbench", 100 * 0.123456) == 12.35
    assert published_score("longbench", None) is None
    assert published_score("babilong", 12.3456) == 12.3456  # no printing rule: unchanged

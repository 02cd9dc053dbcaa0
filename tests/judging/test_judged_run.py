"""Judged tasks in a real run on a tiny model: HelloBench on its fixture, skipped without a judge, regraded
beside the first judge's rows, and the command line's refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, tiny_backend

from judging.scripted import ScriptedJudge, grades_reply
from longscope import runner
from longscope.config import RunConfig
from longscope.core import UsageError
from longscope.judging.regrade import regrade
from longscope.judging.setup import NO_JUDGE
from longscope.store import RunStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def rows_of(run_dir: Path):
    store = RunStore.open(run_dir, create=False)
    try:
        return store.results(), store.get_meta("judge")
    finally:
        store.close()


def config(tasks: str, judge: str | None) -> RunConfig:
    return RunConfig.from_options(
        tasks=tasks, data=str(FIXTURES / "hellobench"), judge=judge, lengths="1k", samples="1"
    )


@pytest.mark.slow
def test_hellobench_graded_end_to_end_then_regraded_beside(tmp_path):
    model = tiny_backend()
    first = ScriptedJudge(lambda m: grades_reply(1, 0.5, 0), name="judge-a")
    run_dir = tmp_path / "run"
    runner.run(config("hellobench(max_new_tokens=8)", "openai:http://127.0.0.1:9/v1#judge-a"), run_dir,
               backend=model, judge_backend=first, show_progress=False, plane_retrievers=())  # fmt: skip
    rows, meta = rows_of(run_dir)
    ok = sorted((r for r in rows if r.status == "ok"), key=lambda r: r.sample_id)
    assert [r.sample_id for r in ok] == [
        "hellobench(max_new_tokens=8)/open_ended_qa/open_ended_qa_000",
        "hellobench(max_new_tokens=8)/summarization/summarization_000",
    ]
    assert all(r.score == pytest.approx(0.5) and r.judge == "scripted:judge-a@test" for r in ok)
    details = json.loads(ok[1].details)
    assert details["item_grades"] == [1.0, 0.5, 0.0] and details["judge_prompt"] == "checklist@1"
    assert details["judge_replies"] == [grades_reply(1, 0.5, 0)]
    assert details["items"][0] == "Does the summary mention all three walls?"
    assert all(r.judge_calls == 1 and r.judge_input_tokens > 0 and r.judge_cost is None for r in ok)
    # the judge saw the whole message: the text to summarise and the instruction, and the model's answer
    judged = first.requests[-1].messages[-1]["content"]
    assert "Wexmoor" in judged and ok[1].prediction in judged
    assert meta["identity"] == "scripted:judge-a@test" and meta["prompts"]["checklist"]["version"] == "1"
    rejected = [r for r in rows if r.status == "skipped"]
    assert [r.error for r in rejected] == ["invalid record summarization.jsonl:2: no checklist items"]

    second = ScriptedJudge(lambda m: grades_reply(1, 1, 0), name="judge-b")
    compared = regrade(run_dir, "openai:http://127.0.0.1:9/v1#judge-b", judge_backend=second)
    after, _ = rows_of(run_dir)
    before_keys = {r.key: r for r in rows}
    for row in after:  # every old row is still there, unchanged
        if row.key in before_keys:
            assert row == before_keys[row.key]
    new = [r for r in after if r.key not in before_keys]
    assert len(new) == 2 and all(r.method == "full@judge:judge-b" for r in new)
    assert all(r.score == pytest.approx(2 / 3) and r.judge == "scripted:judge-b@test" for r in new)
    assert compared.n == 2 and compared.items == 6 and compared.same_items == pytest.approx(4 / 6)
    assert compared.within_quarter == 1.0 and compared.difference.difference == pytest.approx(
        100 * (2 / 3 - 0.5)
    )
    # the same judge again: the cache answers, and only its own rows are replaced
    third = ScriptedJudge(lambda m: "OK" if m[-1]["content"] == "Reply with OK." else pytest.fail("asked"),
                          name="judge-b")  # fmt: skip
    regrade(run_dir, "openai:http://127.0.0.1:9/v1#judge-b", judge_backend=third)
    assert len(rows_of(run_dir)[0]) == len(after)
    with pytest.raises(UsageError, match="was graded by scripted:judge-a@test already"):
        regrade(run_dir, "openai:http://127.0.0.1:9/v1#judge-a", judge_backend=first)


def test_without_a_judge_judged_tasks_are_skipped_beside_others_and_refused_alone(tmp_path):
    with pytest.raises(UsageError, match=f"^hellobench: {NO_JUDGE}$"):
        runner.run(
            config("hellobench", None), tmp_path / "alone", backend=tiny_backend(), show_progress=False
        )
    assert not (tmp_path / "alone").exists()
    mixed = config("hellobench(max_new_tokens=4),niah(max_new_tokens=4)", None)
    runner.run(mixed, tmp_path / "mixed", backend=tiny_backend(), show_progress=False, plane_retrievers=())
    rows, meta = rows_of(tmp_path / "mixed")
    assert meta is None
    assert sorted(r.error for r in rows if r.task.startswith("hellobench") and r.length) == [
        NO_JUDGE,
        NO_JUDGE,
    ]
    assert [r.status for r in rows if r.task.startswith("niah")] == ["ok"]


def test_a_judge_failing_mid_run_makes_failed_rows_that_the_next_run_grades(tmp_path):
    state = {"up": True}

    def flaky(messages):
        if messages[-1]["content"] == "Reply with OK.":
            return "OK"
        if not state["up"]:
            raise ConnectionError("judge down")
        return grades_reply(1, 1, 1)

    state["up"] = False
    cfg = config("hellobench:open_ended_qa(max_new_tokens=4)", "openai:http://127.0.0.1:9/v1#judge-a")
    runner.run(cfg, tmp_path / "run", backend=tiny_backend(), judge_backend=ScriptedJudge(flaky),
               show_progress=False, plane_retrievers=())  # fmt: skip
    rows, _ = rows_of(tmp_path / "run")
    assert [(r.status, r.error) for r in rows] == [("failed", "judge failed: ConnectionError: judge down")]
    assert rows[0].prediction  # the answer is kept with the failure
    state["up"] = True
    runner.run(cfg, tmp_path / "run", backend=tiny_backend(), judge_backend=ScriptedJudge(flaky),
               show_progress=False, plane_retrievers=())  # fmt: skip
    rows, _ = rows_of(tmp_path / "run")
    assert [(r.status, r.score) for r in rows] == [("ok", 1.0)]


def test_a_judge_whose_window_cannot_hold_the_answer_is_refused_up_front(tmp_path):
    small = ScriptedJudge(window=300)
    with pytest.raises(UsageError, match=r"open_ended_qa_000: the judge judge-a has a 300-token window"):
        runner.run(config("hellobench:open_ended_qa", "openai:http://127.0.0.1:9/v1#judge-a"), tmp_path / "r",
                   backend=tiny_backend(), judge_backend=small, show_progress=False)  # fmt: skip
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_command_line_refusals_are_one_line_exit_2(tmp_path):
    alone = run_cli("run", "--tasks", "checklist_writing", "--out", str(tmp_path / "a"), "--no-progress")
    assert alone.returncode == 2 and alone.stderr.strip().splitlines() == [
        f"error: checklist_writing: {NO_JUDGE}"
    ]
    silent = run_cli("run", "--tasks", "checklist_writing:chat", "--judge", "openai:http://127.0.0.1:9/v1#judge",
                     "--model", "openai:http://127.0.0.1:9/v1#m?context_window=4096&tokenizer=x",
                     "--out", str(tmp_path / "b"), "--no-progress")  # fmt: skip
    assert silent.returncode == 2 and len(silent.stderr.strip().splitlines()) == 1
    regraded = run_cli("regrade", str(tmp_path / "nothing"), "--judge", "openai:http://127.0.0.1:9/v1#j")
    assert regraded.returncode == 2 and len(regraded.stderr.strip().splitlines()) == 1

"""The judge and the difficulty breakdowns in the report, summary.json and `longscope show`: judging counted apart
from the model, two judges compared after a regrade, score by level/overlap with n and intervals, and nothing
shown for a run that has neither."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import pytest
from conftest import run_cli, tiny_backend
from judging.scripted import ScriptedJudge, grades_reply
from rich.console import Console

from longscope import runner, terminal
from longscope.analysis.breakdown import report_breakdowns
from longscope.config import RunConfig
from longscope.core import Result
from longscope.report import breakdowns
from longscope.report.commands import build_report
from longscope.report.load import RunData, load_run
from longscope.report.page import analyse, render_report

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIRST_URI = "openai:http://127.0.0.1:9/v1#judge-a"
SECOND_URI = "openai:http://127.0.0.1:9/v1#judge-b"


def judged_config(tasks: str, judge: str | None) -> RunConfig:
    return RunConfig.from_options(
        tasks=tasks, data=str(FIXTURES / "hellobench"), judge=judge, lengths="1k", samples="1"
    )


def grading_words(judge: ScriptedJudge) -> int:
    """The input tokens of every grading request the judge saw (its backend counts words), its check left out."""
    return sum(
        judge.count_tokens(judge.render(r.messages))
        for r in judge.requests
        if r.messages[-1]["content"] != "Reply with OK."
    )


@pytest.fixture(scope="module")
def regraded_run(tmp_path_factory):
    """HelloBench's two fixture outputs graded by judge-a (1, 0.5, 0 per checklist), then regraded by judge-b
    (1, 1, 0): two judges over the same two outputs."""
    root = tmp_path_factory.mktemp("judged")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGSCOPE_CACHE", str(root / "cache"))
        from longscope.judging.regrade import regrade

        first = ScriptedJudge(lambda m: grades_reply(1, 0.5, 0), name="judge-a")
        second = ScriptedJudge(lambda m: grades_reply(1, 1, 0), name="judge-b")
        run_dir = root / "run"
        runner.run(judged_config("hellobench(max_new_tokens=8)", FIRST_URI), run_dir, backend=tiny_backend(),
                   judge_backend=first, show_progress=False, plane_retrievers=())  # fmt: skip
        regrade(run_dir, SECOND_URI, judge_backend=second)
        written = build_report(run_dir)
    return run_dir, written, first, second


@pytest.mark.slow  # the module's judged run takes ~40 s on two shared cores
def test_judging_is_counted_apart_and_two_judges_are_compared_in_summary_json(regraded_run):
    run_dir, _, first, second = regraded_run
    judging = json.loads((run_dir / "summary.json").read_text())["judging"]
    by_identity = {j["identity"]: j for j in judging["judges"]}
    a, b = by_identity["scripted:judge-a@test"], by_identity["scripted:judge-b@test"]
    # each judge graded both outputs once; its reply is 3 lines of 4 words ("1: 1 - reason")
    assert (a["regrade"], a["graded"], a["failed"], a["calls"], a["rows"]) == (False, 2, 0, 2, 2)
    assert (b["regrade"], b["graded"], b["failed"], b["calls"]) == (True, 2, 0, 2)
    assert a["output_tokens"] == 24 and b["output_tokens"] == 24
    assert a["input_tokens"] == grading_words(first) and b["input_tokens"] == grading_words(second)
    assert a["cost"] is None and a["price_in"] is None  # no prices in the URI: unknown, not free
    assert a["uri"] == FIRST_URI and b["uri"] == SECOND_URI
    assert a["prompts_used"] == ["checklist@1"] and a["prompts_stored"]["checklist"] == "1"
    # the evaluated model answered the two outputs once: the regraded copies do not count again
    store_rows = load_run(run_dir).results
    answered = [r for r in store_rows if r.length and r.status != "skipped" and "|judge:" not in r.key]
    assert judging["model"]["rows"] == 2
    assert judging["model"]["input_tokens"] == sum(r.input_tokens for r in answered)
    assert judging["unjudged"] == 0

    [compared] = judging["comparisons"]
    assert (compared["first"], compared["second"]) == ("scripted:judge-a@test", "scripted:judge-b@test")
    # items: (1, .5, 0) against (1, 1, 0) on two outputs -> 4 of 6 the same; scores .5 and 2/3 within 0.25
    assert (compared["n"], compared["items"]) == (2, 6)
    assert compared["same_items"] == pytest.approx(4 / 6, abs=1e-4) and compared["within_quarter"] == 1.0
    assert compared["difference"]["difference"] == pytest.approx(100 * (2 / 3 - 0.5), abs=1e-3)
    assert compared["difference"]["n"] == 2 and compared["difference"]["low"] is None  # below 10 contexts


@pytest.mark.slow  # the module's judged run takes ~40 s on two shared cores
def test_the_page_shows_the_judges_beside_the_cost_and_their_comparison(regraded_run):
    run_dir, written, _, _ = regraded_run
    page = unescape(written.path.read_text())
    cost = page[page.index('<section id="cost">') : page.index('<section id="predictions">')]
    assert "Judging, counted apart from the evaluated model" in cost
    for text in (
        "evaluated model",
        "scripted:judge-a@test",
        "scripted:judge-b@test",
        FIRST_URI,
        "checklist@1",
    ):
        assert text in cost, text
    assert "Two judges on the same outputs" in cost
    sentence = json.loads((run_dir / "summary.json").read_text())["judging"]["comparisons"][0]["sentence"]
    assert sentence in cost
    assert 'href="#judging"' in page and "Score by difficulty" not in page  # hellobench carries no such key


def test_failed_and_missing_judgements_are_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGSCOPE_CACHE", str(tmp_path / "cache"))

    def down(messages):
        if messages[-1]["content"] == "Reply with OK.":
            return "OK"
        raise ConnectionError("judge down")

    cfg = judged_config("hellobench:open_ended_qa(max_new_tokens=4)", FIRST_URI)
    runner.run(cfg, tmp_path / "failed", backend=tiny_backend(), judge_backend=ScriptedJudge(down),
               show_progress=False, plane_retrievers=())  # fmt: skip
    data = load_run(tmp_path / "failed")
    page = unescape(render_report(data, analyse(data)))
    from longscope.report import judging as judge_report

    [judge] = judge_report.summary(data)["judges"]
    assert (judge["graded"], judge["failed"]) == (0, 1)
    assert judge_report.section(data)["failed"] == 1 and '<span class="bad">1</span>' in page


def test_a_judged_task_without_a_judge_is_counted_as_unjudged():
    rows = [Result(key=f"k{i}", sample_id=f"s{i}", task="hellobench", length=1024, depth=None, seed=0, turn=0,
                   status="skipped", error="needs a judge") for i in range(2)]  # fmt: skip
    meta = {"s0": {"judge_prompt": "checklist"}, "s1": {"judge_prompt": "checklist"}}
    from longscope.report import judging as judge_report

    data = RunData(Path("/nonexistent-run"), rows, meta, {})
    assert judge_report.summary(data)["unjudged"] == 2 and judge_report.summary(data)["judges"] == []
    assert judge_report.section(data)["unjudged"] == 2


def hand_rows() -> RunData:
    """ladder at level easy: 1, 1, 0; at hard: 0, 0. latent_needles at overlap 0: 1; overlap 2: 0, 1, 1, 1."""

    def row(i: int, task: str, score: float) -> Result:
        return Result(key=f"k{i}", sample_id=f"{task}/{i}", task=task, length=2048, depth=None, seed=i, turn=0,
                      status="ok", score=score)  # fmt: skip

    rows, metadata = [], {}
    for i, (task, key, value, score) in enumerate(
        [
            ("ladder", "level", "easy", 1),
            ("ladder", "level", "easy", 1),
            ("ladder", "level", "easy", 0),
            ("ladder", "level", "hard", 0),
            ("ladder", "level", "hard", 0),
            ("latent_needles", "overlap", 0, 1),
            ("latent_needles", "overlap", 2, 0),
            ("latent_needles", "overlap", 2, 1),
            ("latent_needles", "overlap", 2, 1),
            ("latent_needles", "overlap", 2, 1),
        ]  # fmt: skip
    ):
        rows.append(row(i, task, float(score)))
        metadata[rows[-1].sample_id] = {key: value}
    rows.append(Result(key="kf", sample_id="ladder/f", task="ladder", length=2048, depth=None, seed=9, turn=0,
                       status="failed", error="boom"))  # fmt: skip
    metadata["ladder/f"] = {"level": "medium"}  # a failed row is no score: no "medium" column
    return RunData(Path("/nonexistent-run"), rows, metadata, {})


def test_score_by_level_and_overlap_with_n_and_wilson_intervals():
    data = hand_rows()
    [overlap, level] = breakdowns.summary(data)  # in the order of REPORT_KEYS
    assert overlap["key"] == "overlap" and level["key"] == "level"
    cells = {(c["task"], c["value"]): c for c in level["cells"]}
    assert set(cells) == {("ladder", "easy"), ("ladder", "hard")}
    easy = cells[("ladder", "easy")]
    # Wilson 95% for 2 of 3: centre 0.5731, half-width 0.3654 (worked by hand)
    assert (easy["n"], easy["interval"]) == (3, "wilson")
    assert easy["mean"] == pytest.approx(66.6667, abs=1e-3)
    assert easy["low"] == pytest.approx(20.77, abs=0.01) and easy["high"] == pytest.approx(93.85, abs=0.01)
    assert cells[("ladder", "hard")]["mean"] == 0.0 and cells[("ladder", "hard")]["n"] == 2
    by_overlap = {c["value"]: (c["n"], c["mean"]) for c in overlap["cells"]}
    assert by_overlap == {0: (1, 100.0), 2: (4, 75.0)}

    page = unescape(render_report(data, analyse(data)))
    section = page[page.index('<section id="score-by">') : page.index('<section id="cost">')]
    assert "Score by level" in section and "Score by overlap" in section
    assert "66.7" in section and "[20.8, 93.9]" in section and "n=3" in section
    assert '<th class="num">medium</th>' not in section
    # the same tables print under `longscope show`
    console = Console(record=True, width=200)
    terminal.print_score_by(console, report_breakdowns(data.results, data.metadata), Path("run"))
    text = console.export_text()
    assert "score (0-100) by task and level" in text and "66.7 n=3" in text and "[20.8, 93.9]" in text


@pytest.mark.slow
def test_show_and_report_print_judges_and_nothing_empty(tmp_path, regraded_run):
    """The real CLI: `show` on the regraded run prints the judges and their comparison; on a run with neither a
    judge nor a difficulty key, `show` and `report` print and write no judging or score-by section."""
    judged = run_cli("show", str(regraded_run[0]))
    assert judged.returncode == 0, judged.stderr
    assert "Judge scripted:judge-a@test" in judged.stdout and "Judges compared:" in judged.stdout

    plain = tmp_path / "plain"
    runner.run(RunConfig.from_options(tasks="niah(max_new_tokens=4)", lengths="512", samples="1"), plain,
               backend=tiny_backend(), show_progress=False, plane_retrievers=())  # fmt: skip
    shown = run_cli("show", str(plain))
    assert shown.returncode == 0 and not shown.stderr.strip(), shown.stderr
    for absent in ("Judge", "judge", "Score by", "by task and overlap", "by task and level"):
        assert absent not in shown.stdout, absent
    reported = run_cli("report", str(plain))
    assert reported.returncode == 0, reported.stderr
    page = (plain / "report.html").read_text()
    assert 'id="score-by"' not in page and 'id="judging"' not in page and "Judging" not in page
    summary = json.loads((plain / "summary.json").read_text())
    assert summary["judging"] is None and summary["score_by"] == []

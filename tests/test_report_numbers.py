"""Every number the report prints carries its n and an honest interval (or says why it has none); methods and
runs are compared paired on the same samples; effective lengths follow the published rules. Hand-made rows in
real run directories: no model needed."""

from __future__ import annotations

import csv
import json
import re
from html import unescape

import pytest

from longscope.config import RunConfig, rerun_command
from longscope.core import Result, Sample, Turn, UsageError
from longscope.report import costs
from longscope.report.commands import build_comparison, build_report
from longscope.store import RunStore


def row(task, length, seed, score, *, method="full", mode="independent", turn=0, status="ok"):
    sample_id = f"{task}@{length}/s{seed}"
    return Result(key=f"{sample_id}/{method}/{turn}", sample_id=sample_id, task=task, length=length, depth=None,
                  seed=seed, turn=turn, status=status, score=None if status != "ok" else score, method=method,
                  mode=mode, truncation="none", model="hand-made")  # fmt: skip


def write_run(folder, rows, *, meta=None, sample_meta=None):
    """A run directory holding ``rows``, each with a stored sample whose realised length in characters is
    ten per token (and ``sample_meta`` besides)."""
    store = RunStore.open(folder, create=True)
    try:
        for result in rows:
            metadata = {"realised_chars": 10 * result.length, "truncation": "none", **(sample_meta or {})}
            sample = Sample(id=result.sample_id, task=result.task, context="x", turns=(Turn("q?", ("a",)),),
                            template="{context} {question}", max_new_tokens=4, metadata=metadata)  # fmt: skip
            store.write(result, sample)
        store.set_meta("state", "done")
        for key, value in (meta or {}).items():
            store.set_meta(key, value)
    finally:
        store.close()
    return folder


def report(folder):
    written = build_report(folder)
    html = unescape(written.path.read_text(encoding="utf-8"))
    summary = json.loads((folder / "summary.json").read_text())
    return html, summary


def cell(summary, task, length, method="full"):
    (found,) = [
        c for c in summary["cells"] if (c["task"], c["length"], c["method"]) == (task, length, method)
    ]
    return found


def test_one_pass_gets_wilson_not_a_point(tmp_path):
    html, summary = report(write_run(tmp_path, [row("niah", 1024, 0, 1.0)]))
    one = cell(summary, "niah", 1024)
    assert one["n"] == 1 and one["mean"] == 100.0 and one["interval"] == "wilson" and one["reason"] is None
    assert one["low"] == pytest.approx(20.65, abs=0.01) and one["high"] == 100.0
    assert "[20.7, 100.0]" in html and "n=1" in html
    assert "Wilson score interval" in html  # the legend names the rule
    # No interval anywhere on the page has zero width.
    assert not [pair for pair in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", html) if pair[0] == pair[1]]
    # The headline says what interval it shows: with one task, the mean over tasks is that task's own mean,
    # with its own interval.
    (overall,) = summary["overall"]
    assert (
        overall["interval"] == "wilson"
        and overall["n"] == 1
        and overall["low"] == pytest.approx(20.65, abs=0.01)
    )


def test_graded_cell_below_ten_has_no_interval_and_says_why(tmp_path):
    rows = [row("qa", 2048, seed, score) for seed, score in enumerate([0.5, 0.7, 0.3])]
    html, summary = report(write_run(tmp_path, rows))
    graded = cell(summary, "qa", 2048)
    assert graded["n"] == 3 and graded["mean"] == pytest.approx(50.0)
    assert graded["interval"] == "none" and graded["low"] is None and graded["high"] is None
    assert graded["reason"] == "3 samples; graded scores get a bootstrap interval from 10"
    assert "no interval" in html and "3 samples; graded scores get a bootstrap interval from 10" in html
    assert summary["intervals"]["resamples"] == 2000 and summary["intervals"]["min_bootstrap"] == 10
    assert set(summary["intervals"]["rules"]) >= {"pass/fail", "graded", "mean over tasks", "paired"}


def test_mean_over_tasks_gets_a_stratified_interval_when_every_task_has_ten(tmp_path):
    rows = [row(task, 1024, seed, float(seed % 3 != 0)) for task in ("a", "b") for seed in range(10)]
    html, summary = report(write_run(tmp_path, rows))
    (overall,) = summary["overall"]
    assert overall["n"] == 20 and overall["tasks"] == 2 and overall["interval"] == "stratified bootstrap"
    assert overall["low"] < overall["mean"] < overall["high"] and overall["reason"] is None
    assert "95% stratified bootstrap over tasks" in html and "n=20 over 2 tasks" in html


def test_effective_lengths_follow_the_published_rules(tmp_path):
    # 85.6 at 4k sits exactly on RULER's threshold: the stated rule ("exceeds") does not count it.
    scores = {1024: 1.0, 2048: 0.9, 4096: 0.856}
    rows = [row("qa", n, seed, s) for n, s in scores.items() for seed in range(5)]
    html, summary = report(write_run(tmp_path, rows))
    assert summary["effective_length"]["overall"] == 2048 and summary["effective_length"]["label"] == "2k"
    assert "exceeds the threshold" in summary["effective_length"]["rule"]
    # NoLiMa's: 85.6 keeps at least 85% of the 100 at the shortest length.
    assert summary["relative_effective_length"]["overall"] == 4096
    assert summary["relative_effective_length"]["share"] == 0.85
    # Trapezoids on log2 length: ((100 + 90) / 2 + (90 + 85.6) / 2) / 2.
    auc = summary["auc"]["overall"]
    assert auc["value"] == pytest.approx(91.4) and auc["interval"] == "none" and "5 samples" in auc["reason"]
    assert "exactly 85.6" in html and "RULER" in html and "NoLiMa" in html


def test_effective_label_when_every_length_passes_or_none_does(tmp_path):
    rows = [row("all", n, 0, 1.0) for n in (1024, 2048)] + [row("none", n, 0, 0.0) for n in (1024, 2048)]
    _, summary = report(write_run(tmp_path, rows))
    assert summary["effective_length"]["labels"] == {"all": ">2k", "none": "<1k"}


def test_methods_are_compared_paired_against_full(tmp_path):
    # Full passes all twelve samples; snapkv fails eight of them: eight discordant pairs one way.
    rows = [row("niah", 1024, seed, 1.0) for seed in range(12)]
    rows += [row("niah", 1024, seed, float(seed >= 8), method="snapkv:0.5") for seed in range(12)]
    # At 2k they agree but for one sample: not significant.
    rows += [row("niah", 2048, seed, 1.0) for seed in range(12)]
    rows += [row("niah", 2048, seed, float(seed != 0), method="snapkv:0.5") for seed in range(12)]
    html, summary = report(write_run(tmp_path, rows))
    paired = summary["paired"]
    assert paired["reference"] == "full"
    by_length = {d["length"]: d for d in paired["differences"]}
    assert set(by_length) == {1024, 2048, None}
    low = by_length[1024]
    assert low["other"] == "snapkv:0.5" and low["n"] == 12 and low["difference"] == pytest.approx(-66.6667)
    assert low["test"] == "McNemar" and low["p_value"] == pytest.approx(0.0078125) and low["significant"]
    assert low["low"] < low["difference"] < low["high"] < 0
    assert not by_length[2048]["significant"] and by_length[2048]["p_value"] == 1.0
    assert by_length[None]["n"] == 24 and by_length[None]["difference"] == pytest.approx(-37.5)
    assert 'id="paired"' in html and "Methods against full on the same samples" in html
    sentence = re.search(r'<strong class="sig">(snapkv:0\.5 is 66\.7 points below full [^<]*)</strong>', html)
    assert sentence and "n=12, McNemar p=0.00781, significant" in sentence.group(1)
    assert "snapkv:0.5 is 8.3 points below full" in html and "not significant" in html
    # Each method's row in the headline table carries its n and interval as well.
    methods = html[html.index('id="methods"') : html.index("</table>", html.index('id="methods"'))]
    assert "n=12" in methods and "[" in methods


def test_a_single_method_run_has_no_paired_section(tmp_path):
    html, summary = report(write_run(tmp_path, [row("niah", 1024, s, 1.0) for s in range(3)]))
    assert summary["paired"]["differences"] == [] and 'id="paired"' not in html


def test_results_csv_has_one_truncation_column_and_the_realised_characters(tmp_path):
    folder = write_run(tmp_path, [row("niah", 1024, 0, 1.0), row("niah", 2048, 0, 0.0, status="failed")])
    build_report(folder)
    with (folder / "results.csv").open(newline="") as handle:
        header, *lines = list(csv.reader(handle))
    assert header.count("truncation") == 1 and "realised_chars" in header
    records = [dict(zip(header, line, strict=True)) for line in lines]
    assert [(r["length"], r["realised_chars"], r["truncation"]) for r in records] == [
        ("1024", "10240", "none"),
        ("2048", "20480", "none"),
    ]


def test_one_rerun_line_per_invocation(tmp_path, monkeypatch):
    def no_hardware():  # the cost check measures this machine (seconds, loading torch); not what this is about
        raise UsageError("not measured in this test")

    monkeypatch.setattr(costs, "this_machine", no_hardware)
    first = RunConfig(model="smollm2", tasks=["niah"], lengths=[1024])
    second = RunConfig(model="smollm2", tasks=["niah"], lengths=[2048])
    folder = write_run(tmp_path / "run", [row("niah", 1024, 0, 1.0)],
                       meta={"config": second.as_dict(), "invocations": [first.as_dict(), second.as_dict()]})  # fmt: skip
    html, _ = report(folder)
    exported = json.loads((folder / "config.json").read_text())
    lines = [rerun_command(first, str(folder)), rerun_command(second, str(folder)) + " --add"]
    assert exported["rerun_all"] == lines and exported["rerun"] == lines[0]
    assert len(exported["invocations"]) == 2
    assert "\n".join(lines) in html

    # A run from before invocations were recorded: its one configuration, one line.
    old = write_run(tmp_path / "old", [row("niah", 1024, 0, 1.0)], meta={"config": first.as_dict()})
    report(old)
    exported = json.loads((old / "config.json").read_text())
    assert exported["rerun_all"] == [exported["rerun"]] == [rerun_command(first, str(old))]


def test_compare_pairs_runs_on_their_shared_samples(tmp_path):
    before = write_run(tmp_path / "before", [row("niah", 1024, s, 1.0) for s in range(12)]
                       + [row("niah", 2048, s, 1.0) for s in range(12)])  # fmt: skip
    # The later run loses six samples at 1k and scores one sample the first run never had; its rows are
    # snapkv, its only method, compared against the first run's full.
    after = write_run(tmp_path / "after", [row("niah", 1024, s, float(s >= 6), method="snapkv:0.5") for s in range(13)]
                      + [row("niah", 2048, s, 1.0, method="snapkv:0.5") for s in range(12)])  # fmt: skip
    written = build_comparison([before, after], tmp_path / "out")
    html = unescape(written.path.read_text(encoding="utf-8"))
    numbers = json.loads((tmp_path / "out" / "compare.json").read_text())
    by_length = {d["length"]: d for d in numbers["paired"]}
    assert set(by_length) == {1024, 2048, None}
    low = by_length[1024]
    assert (low["other"], low["reference"], low["n"]) == (
        "after",
        "before",
        12,
    )  # the 13th sample is unpaired
    assert low["difference"] == pytest.approx(-50.0) and low["test"] == "McNemar"
    assert low["p_value"] == pytest.approx(0.03125) and low["significant"]
    assert by_length[2048]["difference"] == 0.0 and not by_length[2048]["significant"]
    assert "Runs against before on the same samples" in html
    assert "after is 50.0 points below before" in html and "n=12, McNemar p=0.0312, significant" in html
    # compare's own tables carry n and intervals named by their rule.
    cells = {(c["task"], c["length"]): c for c in numbers["runs"][1]["cells"]}
    assert cells[("niah", 1024)]["n"] == 13 and cells[("niah", 1024)]["interval"] == "wilson"
    overall = {c["length"]: c for c in numbers["runs"][1]["overall"]}
    assert overall[1024]["interval"] == "wilson" and overall[1024]["n"] == 13  # one task: its own interval
    assert "n=13" in html and "Wilson score interval" in html


def test_compare_of_runs_sharing_no_sample_says_so(tmp_path):
    one = write_run(tmp_path / "one", [row("niah", 1024, 0, 1.0)])
    two = write_run(tmp_path / "two", [row("niah", 1024, 1, 1.0)])
    written = build_comparison([one, two], tmp_path / "out")
    numbers = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert [(d["length"], d["n"], d["difference"]) for d in numbers["paired"]] == [(None, 0, None)]
    assert "two and one share no scored sample" in unescape(written.path.read_text(encoding="utf-8"))


def test_published_benchmark_subsets_carry_their_intervals(tmp_path):
    rows = [row("bench_a", 4096, seed, 1.0) for seed in range(2)]  # pass/fail: Wilson even at n=2
    rows += [row("bench_b", 4096, seed, score) for seed, score in enumerate([0.2, 0.6, 0.4])]
    html, _ = report(write_run(tmp_path, rows, sample_meta={"benchmark": "made_up"}))
    section = html[html.index('id="benchmarks"') : html.index("</section>", html.index('id="benchmarks"'))]
    assert "[34.2, 100.0]" in section  # Wilson for two passes of two
    assert "3 samples; graded scores get a bootstrap interval from 10" in section
    assert "a task has 2 samples here" in section  # the average over subsets: no interval, and why


def test_results_csv_neutralises_spreadsheet_formulas(tmp_path):
    import csv

    rows = [row("niah", 1024, i, 1.0) for i in range(4)]
    for r, text in zip(rows, ["=1+1", "+cmd", "@SUM(A1)", "-2"], strict=True):
        r.prediction = text
    folder = write_run(tmp_path, rows)
    report(folder)
    with (folder / "results.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert sorted(line["prediction"] for line in lines) == ["'+cmd", "'-2", "'=1+1", "'@SUM(A1)"]
    assert all(line["score"] == "1.0" for line in lines)  # numbers stay numbers

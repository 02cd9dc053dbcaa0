"""The report of a small real run: files beside it, self-contained page, escaped outputs; compare; bad input."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import sqlite3
from html import unescape

import pytest
from conftest import tiny_backend

from longscope.analysis.scores import score_table
from longscope.core import UsageError
from longscope.report.commands import (
    build_comparison,
    build_report,
    cost_text,
    write_comparison,
    write_report,
)
from longscope.runner import RunConfig, run
from longscope.store import DB_NAME, RunStore

PAYLOAD = "<script>window.__pwned = 1; document.title = 'pwned'</script>"


class Injecting:
    """The tiny model, except that its first answer is a script: what a hostile or broken model might return."""

    def __init__(self, inner):
        self.inner = inner
        self.injected = False
        for name in ("kind", "model_name", "model_revision", "context_window"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        generation = self.inner.generate(request)
        if not self.injected:
            self.injected = True
            generation.text = PAYLOAD + " the answer"
        return generation


def make_run(folder, model_dir, **overrides):
    config = dict(tasks=["niah", "niah_multikey"], lengths=[512, 1024], depths=[0.0, 1.0], samples=1)
    config.update(overrides)
    run(RunConfig(model=f"hf:{model_dir}", **config), folder, backend=Injecting(tiny_backend()),
        show_progress=False)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, tiny_model_dir):
    """One real run of the tiny model (8 samples) and its report, shared by this module's tests."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGSCOPE_CACHE", str(root / "cache"))
        folder = make_run(root / "run", tiny_model_dir)
        written = build_report(folder)
    return written


def test_report_and_exports_are_written_beside_the_run(small_run):
    folder = small_run.path.parent
    assert small_run.path == folder / "report.html" and not small_run.in_progress
    assert "wrote" in small_run.message and "\n" not in small_run.message
    for name in ("report.html", "results.csv", "summary.json", "config.json"):
        assert (folder / name).is_file(), name

    store = RunStore.open(folder, create=False)
    try:
        results, metadata, config = store.results(), store.sample_metadata(), store.get_meta("config")
        store_invocations = store.get_meta("invocations")
    finally:
        store.close()
    with (folder / "results.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(results) == 8
    assert {line["prediction"] for line in lines} >= {PAYLOAD + " the answer"}
    assert all(line["truncation"] == "none" for line in lines)

    summary = json.loads((folder / "summary.json").read_text())
    table = score_table(results, metadata, threshold=config["threshold"])
    assert summary["tasks"] == ["niah", "niah_multikey"] and summary["lengths"] == [512, 1024]
    assert summary["effective_length"]["overall"] == table.effective_length()
    assert {(c["task"], c["length"]): c["n"] for c in summary["cells"]} == {
        key: cell.n for key, cell in table.cells.items()
    }
    settings = {k: summary["intervals"][k] for k in ("resamples", "seed", "level", "min_bootstrap")}
    assert settings == {"resamples": 2000, "seed": 0, "level": 0.95, "min_bootstrap": 10}
    # Every cell and length says how its interval was made, or why it has none; never a zero-width one.
    for entry in summary["cells"] + summary["overall"]:
        assert entry["n"] >= 1 and entry["interval"]
        if entry["interval"] == "none":
            assert entry["low"] is None and entry["high"] is None and entry["reason"]
        else:
            assert entry["low"] < entry["high"] and entry["reason"] is None
    assert summary["effective_length"]["label"] == table.effective_label()
    # The run's own model is readable (hf:DIR), so the cost model is checked against it; KV bytes exactly.
    assert summary["cost_model"]["kv_mean_abs_error_percent"] == 0.0
    assert summary["cost_model"]["prefill_mean_abs_error_percent"] is not None

    exported = json.loads((folder / "config.json").read_text())
    assert exported["config"] == config
    assert exported["rerun"].startswith("longscope run --model") and "--lengths 0.5k,1k" in exported["rerun"]
    # One invocation wrote this run: one re-run line (the store records invocations, or only the config).
    assert exported["rerun_all"] == [exported["rerun"]]
    assert exported["invocations"] == (store_invocations or [config])


def test_page_is_self_contained_with_captioned_figures(small_run):
    html = small_run.path.read_text(encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    # Nothing is fetched: no remote src/href, no CSS url(), no @import; only data: images.
    assert not re.search(r"""(?:src|href|action|poster|srcset)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(|@import", html, re.I)
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) >= 5  # scores, degradation, two depth grids, plane, frontier, cost overlay
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    figures = re.findall(r"<figure\b.*?</figure>", html, re.S)
    assert len(figures) == len(sources)
    assert all(re.search(r"<figcaption>.+</figcaption>", f, re.S) for f in figures)
    # Headline first: the effective length comes before the tables and figures.
    assert html.index("effective context length") < html.index("<figure")


def test_model_output_is_escaped_not_run(small_run):
    html = small_run.path.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;window.__pwned = 1; document.title = &#39;pwned&#39;&lt;/script&gt;" in html
    # And the page's own policy would refuse to run a script anyway.
    assert "Content-Security-Policy" in html and "default-src 'none'" in unescape(html)


def test_unfinished_run_is_reported_and_says_so(small_run, tmp_path):
    folder = tmp_path / "unfinished"
    shutil.copytree(small_run.path.parent, folder)
    store = RunStore.open(folder, create=True)
    try:
        store.set_meta("state", "running")
    finally:
        store.close()
    written = build_report(folder)
    assert written.in_progress and "has not finished" in written.message and "8 samples" in written.message
    html = written.path.read_text(encoding="utf-8")
    assert 'id="in-progress"' in html and "has not finished" in html
    assert write_report(folder) == folder / "report.html"


def test_a_run_without_results_gets_a_page_not_an_error(tmp_path):
    store = RunStore.open(tmp_path, create=True)
    try:
        store.set_meta("state", "running")
    finally:
        store.close()
    written = build_report(tmp_path)
    assert "no results yet" in written.message
    assert "no results yet" in written.path.read_text(encoding="utf-8")


def test_bad_input_is_one_line(small_run, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / DB_NAME) as db:
        db.execute("CREATE TABLE t (x)")
    cases = [
        (lambda: build_report(tmp_path / "missing"), "does not exist"),
        (lambda: build_report(tmp_path / "file.txt"), "is a file"),
        (lambda: build_report(tmp_path / "empty"), "not a longscope run"),
        (lambda: build_report(foreign), "did not write"),
        (lambda: build_comparison([small_run.path.parent], tmp_path / "c.html"), "at least two"),
        (lambda: build_comparison([small_run.path.parent, small_run.path.parent], tmp_path / "c.html"), "twice"),
        (lambda: build_comparison([small_run.path.parent, tmp_path / "empty"], tmp_path / "c.html"), "not a longscope"),
        (lambda: cost_text("llama-3-8b", "12q", "h100"), "cannot read length"),
    ]  # fmt: skip
    for call, words in cases:
        with pytest.raises(UsageError, match=words) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_compare_runs_of_different_tasks(small_run, tmp_path):
    first = small_run.path.parent
    second = tmp_path / "second"
    shutil.copytree(first, second)
    with sqlite3.connect(second / DB_NAME) as db:  # the second run has only one of the two tasks
        db.execute("DELETE FROM results WHERE task = 'niah_multikey'")
    written = build_comparison([first, second], tmp_path / "out")
    assert written.path == tmp_path / "out" / "compare.html"
    assert "2 runs on 2 shared" in written.message and "niah_multikey" in written.message
    html = written.path.read_text(encoding="utf-8")
    assert 'id="not-shared"' in html and "niah_multikey" in html
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 2
    numbers = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert numbers["shared_cells"] == [{"task": "niah", "length": 512}, {"task": "niah", "length": 1024}]
    assert {c["only_in"][0] for c in numbers["not_shared"]} == {"run"}
    # Identical data on the shared cells: identical scores.
    assert numbers["runs"][0]["cells"] == numbers["runs"][1]["cells"]
    assert write_comparison([first, second], tmp_path / "named.html") == tmp_path / "named.html"


def test_compare_runs_with_nothing_in_common(small_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(small_run.path.parent, other)
    with sqlite3.connect(other / DB_NAME) as db:
        db.execute("UPDATE results SET task = 'renamed'")
    written = build_comparison([small_run.path.parent, other], tmp_path / "c.html")
    assert "share no task" in written.message
    assert "share no task at any common length" in written.path.read_text(encoding="utf-8")


def test_cost_text_for_llama3_8b_on_h100():
    text = cost_text("llama-3-8b", "128k", "h100")
    assert "17,179,869,184" in text and "131,072 tokens" in text
    assert "prefill" in text and "decode per token" in text and "concurrent requests that fit" in text
    several = cost_text("qwen2.5-7b", "8k,32k", "a100-80g", dtype="fp8")
    assert "8,192 tokens" in several and "32,768 tokens" in several and "fp8" in several
    assert "do not fit" in cost_text("llama-3-70b", "8k", "l4")

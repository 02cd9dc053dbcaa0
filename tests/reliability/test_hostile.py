"""Hostile text in predictions and dataset fields stays inert in the report and in results.csv."""

from __future__ import annotations

import csv
import re

from test_report_numbers import row, write_run

from longscope.report.commands import build_report

HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
    '<a href="javascript:window.__pwned=1">click</a>',
    "<svg onload=alert(1)>",
    '"><iframe src="javascript:alert(1)"></iframe>',
]
FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_hostile_predictions_and_task_names_are_inert_in_the_report(tmp_path):
    rows = [row("niah", 1024, i, 1.0) for i in range(len(HOSTILE) + len(FORMULAS))]
    for result, text in zip(rows, HOSTILE + FORMULAS, strict=True):
        result.prediction = text
        result.error = text
    rows.append(row("<b onmouseover=alert(1)>task</b>", 1024, 0, 0.0))
    folder = write_run(tmp_path, rows)
    html = build_report(folder).path.read_text(encoding="utf-8")
    # Not one tag, event handler or javascript: link from the data survives as markup.
    for text in HOSTILE:
        assert text not in html
    assert not re.search(r"<[^>]+\son(error|load|mouseover)\s*=", html, re.IGNORECASE)
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", html, re.IGNORECASE)
    assert "<b onmouseover" not in html
    with (folder / "results.csv").open(newline="", encoding="utf-8") as handle:
        cells = [line["prediction"] for line in csv.DictReader(handle)]
    for cell in cells:
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), repr(cell)
    assert '\'=HYPERLINK("http://x")' in cells and "'@SUM(A1)" in cells

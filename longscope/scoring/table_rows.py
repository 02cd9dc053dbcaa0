"""Table extraction: the rows a response writes as TSV against the gold rows (row-level precision, recall, F1)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring.positions import item_positions, lines_with_offsets, relative

_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _cells(line: str) -> tuple[str, ...]:
    # Spacing around a cell and case are no part of what was extracted; the order of the cells is.
    return tuple(" ".join(cell.split()).lower() for cell in line.strip().strip("|").split("\t"))


def tsv_rows(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """The tab-separated rows of ``text`` with the offset of each line: inside its code fences when it has
    any (a model often wraps a TSV in ```tsv), else every line holding a tab."""
    fenced = [(m.start(1), m.group(1)) for m in _FENCE.finditer(text)]
    blocks = fenced or [(0, text)]
    rows = []
    for start, block in blocks:
        for offset, line in lines_with_offsets(block):
            if "\t" in line:
                rows.append((start + offset + len(line) - len(line.lstrip()), _cells(line)))
    return rows


@SCORERS.register("table_rows_f1")
def table_rows_f1(prediction: str, answers: Sequence[str]) -> tuple[float, dict]:
    """Row-level F1 of the extracted TSV: a predicted row counts when all its cells equal a gold row's
    (case and spacing aside), each gold row matched at most once; the header line is not a row.

    Details: ``precision``, ``recall``, and ``item_positions`` (one entry per gold row, where its matching
    line starts and 1, or null and 0)."""
    gold_lines = [row for _, row in tsv_rows("\n".join(answers))]
    if len(gold_lines) < 2:
        raise ValueError("table_rows_f1 needs a gold TSV: a header line and at least one row")
    header, gold = gold_lines[0], gold_lines[1:]
    predicted = [(offset, row) for offset, row in tsv_rows(prediction) if row != header]
    # Where each distinct row was written, in order, so duplicates of a gold row each find their own line.
    written: dict[tuple[str, ...], list[int]] = {}
    for offset, row in predicted:
        written.setdefault(row, []).append(offset)
    entries = []
    for row in gold:
        places = written.get(row)
        offset = places.pop(0) if places else None
        entries.append((relative(offset, prediction), float(offset is not None)))
    matched = sum((Counter(row for _, row in predicted) & Counter(gold)).values())
    precision = matched / len(predicted) if predicted else 0.0
    recall = matched / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    return f1, {"precision": precision, "recall": recall, "item_positions": item_positions(entries)}

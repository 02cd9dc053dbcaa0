"""`longscope tasks` and `longscope methods` as an 80-column terminal shows them: a line per name by
default, one name in full on request, and a close-name hint for a typo."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from longscope import listing
from longscope.cli import app
from longscope.core import UsageError
from longscope.tasks import TASKS


def invoke(*args: str, columns: int = 80):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


def assert_fits(text: str, width: int = 80) -> None:
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} lines wider than {width}: {long[:3]}"


def test_tasks_list_one_line_per_task_within_80_columns():
    result = invoke("tasks")
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    starts = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    for name in TASKS:
        assert starts.count(name) == 1, name  # on a line of its own, never wrapped or folded
    niah = next(line for line in result.output.splitlines() if line.startswith("niah "))
    task = TASKS.get("niah")()
    assert f"{task.diffusion:.2f}" in niah and f"{task.scope:.2f}" in niah and task.metric in niah


def test_one_task_in_full_shows_every_parameter_and_its_default():
    result = invoke("tasks", "niah")
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    text = result.output
    task = TASKS.get("niah")()
    assert text.startswith("niah — ") and task.description in " ".join(text.split())
    assert f"metric   {task.metric}" in text
    assert f"diffusion {task.diffusion:.2f}, scope {task.scope:.2f}" in text
    for param, default in [("haystack", "essay"), ("num_keys", "1"), ("max_new_tokens", "64")]:
        row = next(line for line in text.splitlines() if line.split()[:1] == [param])
        assert row.split()[1] == default, row
    assert "essay | noise | needles" in text  # a Literal's accepted values


def test_verbose_lists_every_task_in_full_within_80_columns():
    result = invoke("tasks", "--verbose")
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    assert result.output.count("parameters (default, accepted values):") == len(list(TASKS))


def test_an_unknown_name_is_one_line_naming_close_ones():
    result = invoke("tasks", "niha")
    assert isinstance(result.exception, UsageError)
    message = str(result.exception)
    assert "\n" not in message and "unknown task 'niha'" in message and "niah" in message
    with pytest.raises(UsageError, match="lists all"):
        listing.lookup([("niah", object)], "zzzz", "task")


@pytest.mark.parametrize("columns", [80, 200])
def test_the_plane_reads_at_any_width(columns):
    result = invoke("tasks", "--plane", columns=columns)
    assert result.exit_code == 0, result.output
    assert_fits(result.output, columns)
    for name in TASKS:
        assert name in result.output
    if columns == 200:
        assert "┃" in result.output  # wide enough for the grid itself


def test_plane_keeps_names_whole_and_places_them():
    points = {"findable": (0.1, 0.1), "everything": (0.9, 0.95), "some_long_task_name_here": (0.5, 0.5)}
    grid = listing.plane_text(points, width=200)
    assert "some_long_task_name_here" in grid
    narrow = listing.plane_text(points, width=40)
    assert_fits(narrow, 40)
    lines = narrow.splitlines()
    # Most diffuse first: the 0.8-1.0 row comes before the 0.0-0.2 row, each name in its scope cell.
    top, bottom = lines.index("diffusion 0.8-1.0"), lines.index("diffusion 0.0-0.2")
    assert top < bottom
    assert lines[top + 1].split() == ["scope", "0.8-1.0", "everything"]
    assert lines[bottom + 1].split() == ["scope", "0.0-0.2", "findable"]


def test_methods_list_and_one_method_in_full():
    result = invoke("methods")
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "in-process" in rows["snapkv"] and "any backend" in rows["full"]
    detail = invoke("methods", "snapkv")
    assert detail.exit_code == 0, detail.output
    assert_fits(detail.output)
    assert "window_size" in detail.output and "ratio" in detail.output
    assert "snapkv:budget=N" in detail.output
    assert "amount" not in invoke("methods", "full").output  # full takes no ratio or budget


def test_long_descriptions_are_cut_with_an_ellipsis():
    class Wordy:
        metric = "contains_all"
        description = "a description far longer than any terminal is wide " * 4
        diffusion = 0.5
        scope = 0.25

    text = listing.tasks_compact([("wordy", Wordy)], width=60)
    line = next(line for line in text.splitlines() if line.startswith("wordy"))
    assert len(line) == 60 and line.endswith(listing.ELLIPSIS)
    assert "0.50" in line and "0.25" in line and "contains_all" in line

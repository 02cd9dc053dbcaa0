"""The run configuration: one set of defaults, and a command line that reproduces every option."""

from __future__ import annotations

import dataclasses

import pytest

from longscope.config import RunConfig, rerun_command
from longscope.core import UsageError
from longscope.spec import Spec, format_length, format_spec, parse_lengths, parse_spec
from longscope.suites import BUILTIN


def test_the_defaults_are_the_quick_suite():
    quick = BUILTIN["quick"]
    config = RunConfig.from_options(suite=quick)
    assert config == dataclasses.replace(RunConfig(), mode="multi-request", samples=5)
    # The suite's samples and mode go with its tasks: tasks given on the command line get the run defaults.
    mine = RunConfig.from_options(suite=quick, tasks="niah")
    assert (mine.mode, mine.samples, mine.lengths) == ("independent", 1, RunConfig().lengths)
    assert config.tasks == list(quick.tasks) and [format_length(n) for n in config.lengths] == list(
        quick.lengths
    )


FULL = RunConfig(
    model="openai:http://127.0.0.1:8080/v1#m?concurrency=2",
    suite=None,
    tasks=["niah(haystack=noise,value_type=uuid)", "longbench:hotpotqa", "db_sum(density=0.3)"],
    lengths=[1000, 1536, 4096],
    depths=[0.0, 0.25, 1.0],
    samples=3,
    seed=7,
    retries=0,
    threshold=90.5,
    truncation="left",
    methods=["full", "snapkv:0.5", "squeezed(levels=2):budget=128"],
    mode="multi-turn",
    data="data dir/x.jsonl",
    limit=5,
)


@pytest.mark.parametrize("config", [RunConfig(), FULL, dataclasses.replace(FULL, truncation=None, data=None)])
def test_to_argv_and_from_argv_round_trip(config):
    back = RunConfig.from_argv(config.to_argv())
    assert back == dataclasses.replace(config, suite=None)
    # Every field that decides rows is written out.
    argv = config.to_argv()
    for flag in ("--model", "--tasks", "--lengths", "--depths", "--samples", "--seed", "--methods", "--mode"):
        assert flag in argv


def test_rerun_command_quotes_and_names_every_option():
    line = rerun_command(FULL, "runs/my run")
    for part in ("--methods full,snapkv:0.5,squeezed(levels=2):budget=128", "--mode multi-turn",
                 "--truncation left", "--limit 5", "--lengths 1000,1.5k,4k"):  # fmt: skip
        assert part.split(" ", 1)[0] in line and part.split(" ", 1)[1].split(",")[0] in line
    assert "'data dir/x.jsonl'" in line and "'runs/my run'" in line


def test_from_argv_refuses_what_it_cannot_read():
    with pytest.raises(UsageError, match="unknown option '--colour'"):
        RunConfig.from_argv(["--colour", "red"])
    with pytest.raises(UsageError, match="has no value"):
        RunConfig.from_argv(["--samples"])
    with pytest.raises(UsageError, match="--samples must be a whole number"):
        RunConfig.from_argv(["--samples", "abc"])


@pytest.mark.parametrize(
    "text",
    ["niah", "niah(haystack=noise,value_type=uuid)", "longbench:hotpotqa", "longbench:hotpotqa(limit=5)"],
)
def test_task_specs_round_trip(text):
    parsed = parse_spec(text, "task", typed=False)
    assert str(parsed) == text and parse_spec(str(parsed), "task", typed=False) == parsed


@pytest.mark.parametrize(
    "text", ["snapkv", "snapkv:0.5", "squeezed(levels=2):budget=128", "adakv(press=snapkv):0.5"]
)
def test_method_specs_round_trip(text):
    parsed = parse_spec(text, "method")
    assert str(parsed) == text
    assert parse_spec(text, "method") == Spec(parsed.name, "", parsed.params, parsed.amount)


def test_values_are_typed_once():
    assert parse_spec("x(a=1,b=0.5,c=true,d=none,e=word)", "method").params == {
        "a": 1, "b": 0.5, "c": True, "d": None, "e": "word",
    }  # fmt: skip
    assert format_spec("x", {"c": True, "d": None}) == "x(c=true,d=none)"


@pytest.mark.parametrize("lengths", ["1k,2k,4k", "1000,1.5k", "128k,1m"])
def test_lengths_round_trip(lengths):
    parsed = parse_lengths(lengths)
    assert parse_lengths(",".join(format_length(n) for n in parsed)) == parsed

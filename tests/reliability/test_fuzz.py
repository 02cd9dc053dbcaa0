"""Fuzzing the parsers a user's text reaches: task specs, lengths, depths, suite files and dataset files give a
result or a UsageError, never any other exception."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longscope.core import UsageError
from longscope.methods import parse_methods
from longscope.spec import parse_depths, parse_lengths, split_list
from longscope.suites import load_suite
from longscope.tasks import TASKS, make_task
from longscope.tasks.benchmarks.base import read_records

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text made mostly of the grammar's own characters, so that the fuzzer gets deep into the parser.
GRAMMAR = st.text(alphabet=string.ascii_letters[:8] + string.digits + "()=,:._-[]{} \"'kK\x00é", max_size=60)
NAMES = st.sampled_from([*TASKS, "longbench:hotpotqa", "snapkv", "niah_multikey", ""])


def only_usage_errors(parse, text) -> None:
    try:
        parse(text)
    except UsageError as exc:
        assert "\n" not in str(exc), str(exc)


@FUZZ
@given(NAMES, GRAMMAR)
def test_task_specs(name, rest):
    only_usage_errors(lambda t: [make_task(spec) for spec in split_list(t)], name + rest)


@FUZZ
@given(GRAMMAR)
def test_method_lists(text):
    only_usage_errors(parse_methods, text)


@FUZZ
@given(GRAMMAR)
def test_lengths_and_depths(text):
    only_usage_errors(parse_lengths, text)
    only_usage_errors(parse_depths, text)


SUITE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
SUITE_KEYS = st.sampled_from(["tasks", "lengths", "depths", "samples", "mode", "name", "description", "x"])


@FUZZ
@given(st.dictionaries(SUITE_KEYS, SUITE_VALUES, max_size=5), st.sampled_from([".json", ".yaml"]))
def test_suite_files_of_any_shape(mapping, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"suite{suffix}"
        path.write_text(json.dumps(mapping))  # JSON is YAML too
        only_usage_errors(lambda p: load_suite(str(p), list(TASKS)), path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".toml", ".yaml", ".json"]))
def test_suite_files_of_any_bytes(content, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"suite{suffix}"
        path.write_bytes(content)
        only_usage_errors(lambda p: load_suite(str(p), list(TASKS)), path)


RECORD = st.dictionaries(
    st.sampled_from(["input", "context", "answers", "length", "dataset", "_id", "all_classes"]),
    SUITE_VALUES,
    max_size=6,
)


@FUZZ
@given(
    st.lists(RECORD | st.binary(max_size=40), max_size=5),
    st.sampled_from([".jsonl", ".json"]),
)
def test_dataset_files(records, suffix):
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    content = b"\n".join(lines) if suffix == ".jsonl" else b"[" + b",".join(lines) + b"]"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"hotpotqa{suffix}"
        path.write_bytes(content)
        only_usage_errors(lambda p: list(read_records(p)), path)
        task = make_task("longbench:hotpotqa").with_data(str(path))
        only_usage_errors(lambda t: (t.records(), t.rejected()), task)

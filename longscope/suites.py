"""Suites: named sets of tasks with their lengths and depths, built in or read from a TOML, YAML or JSON file."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from longscope.config import MODES, RunConfig
from longscope.core import UsageError
from longscope.spec import format_length

_DEFAULTS = RunConfig()


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    tasks: tuple[str, ...]
    lengths: tuple[str, ...] = ()
    depths: tuple[float, ...] = ()
    samples: int | None = None
    notes: tuple[str, ...] = field(default=())
    mode: str | None = None  # how a sample's questions share its context (None: the run's default)
    methods: tuple[str, ...] = ()  # the methods it compares when --methods is not given (empty: the run's)


# RULER's thirteen tasks at its default knobs, as far as they are synthetic; the two QA tasks need the
# published SQuAD/HotpotQA files (the ruler_qa loader, with --data).
_RULER_LIKE = (
    "niah(haystack=noise)",
    "niah",
    "niah(value_type=uuid)",
    "niah_multikey",
    "niah_multikey(haystack=needles)",
    "niah_multikey(haystack=needles,key_type=uuid,value_type=uuid)",
    "niah_multivalue",
    "niah_multiquery",
    "variable_tracking",
    "common_words",
    "frequent_words",
)

BUILTIN: dict[str, Suite] = {
    # The default run: the run configuration's own tasks, lengths and depths, over 5 contexts per task and length
    # whose questions share one prefill.
    "quick": Suite(
        name="quick",
        description="the default run: needles asked 6-8 at a time over 5 contexts per length, 1k-4k, minutes on a CPU",
        tasks=tuple(_DEFAULTS.tasks),
        lengths=tuple(format_length(n) for n in _DEFAULTS.lengths),
        depths=tuple(_DEFAULTS.depths),
        samples=5,
        mode="multi-request",
    ),
    "niah": Suite(
        name="niah",
        description="the four needle-in-a-haystack variants at two depths",
        tasks=("niah", "niah_multikey", "niah_multivalue", "niah_multiquery"),
        lengths=("1k", "2k", "4k"),
        depths=(0.25, 0.75),
        samples=1,
    ),
    "sessions": Suite(
        name="sessions",
        description="several questions over one context (keys, threads, table lookups): run it with --mode",
        tasks=("niah_multikey(questions=5)", "threading(questions=3)", "db_lookup(questions=5)"),
        lengths=("1k", "2k", "4k"),
        depths=(0.5,),
        samples=1,
        notes=("compare --mode independent, multi-request and multi-turn, with --methods",),
    ),
    # Long outputs sized for the bundled model: every answer within 512 tokens, every request 1.5k tokens, well
    # inside its 8k window; the same five questions packed and one at a time, so the report shows the packing drop.
    "longgen": Suite(
        name="longgen",
        description="long outputs: packed vs one-at-a-time questions, length following, procedures, constrained writing",
        tasks=(
            "packed_questions(questions=5)",
            "packed_questions(questions=5,one_at_a_time=True)",
            "length_following(words=100)",
            "length_following(words=200)",
            "length_following(words=150,language=zh)",
            "procedural(kind=html_to_tsv,budget=512)",
            "procedural(kind=procedure,budget=512)",
            "procedural(kind=schedule,budget=512)",
            "constrained_writing",
        ),
        # 1.5k: the smallest length that holds the HTML table and schedule beside their 512-token answers.
        lengths=("1536",),
        samples=1,
        # The one-at-a-time questions share their context's prefill, as the quick suite's do.
        mode="multi-request",
        notes=(
            "add --methods full,plan-write,recurrent to compare generation methods on the same samples",
            "the 8k output budgets and 10,000-word targets are for models whose window holds them",
        ),
    ),
    "ruler-like": Suite(
        name="ruler-like",
        description="RULER's synthetic families at its default knobs, 4k to 128k",
        tasks=_RULER_LIKE,
        lengths=("4k", "8k", "16k", "32k", "64k", "128k"),
        depths=(0.5,),
        samples=5,
        notes=(
            "RULER's qa_1/qa_2 need the published SQuAD/HotpotQA files: add --tasks ruler_qa:qa_1 --data FILE",
        ),
    ),
}


def _kvpress_leaderboard() -> Suite:
    """kvpress's leaderboard (its evaluation/leaderboard.sh) on the RULER-like tasks at 4k: no press, then every
    ratio of its query-agnostic presses and of its query-aware ones. Qfilter is left out: its filters are
    trained per model and downloaded from a model hub."""
    from longscope.methods.kv.leaderboard import QUERY_AGNOSTIC, QUERY_AWARE, RATIOS

    agnostic = [
        f"leaderboard:{name}:{ratio:g}" for name in QUERY_AGNOSTIC if name != "qfilter" for ratio in RATIOS
    ]
    aware = [f"leaderboard:{name}(query_aware=true):{ratio:g}" for name in QUERY_AWARE for ratio in RATIOS]
    return Suite(
        name="kvpress-leaderboard",
        description="kvpress's leaderboard: its presses at 0.25-0.875, query-agnostic and query-aware, RULER-like at 4k",
        tasks=_RULER_LIKE,
        lengths=("4k",),
        depths=(0.5,),
        samples=10,
        methods=("full", *agnostic, *aware),
        notes=(
            "10 samples per task for a CPU; kvpress's RULER 4k set has 500 per task: add --samples 500",
            "longscope export RUN --format kvpress writes its evaluation folders to set beside the leaderboard",
            "qfilter is left out: its filters are downloaded per model; qa_1/qa_2 need --tasks ruler_qa:... --data",
        ),
    )


BUILTIN["kvpress-leaderboard"] = _kvpress_leaderboard()


def plane_suite(task_names: list[str]) -> Suite:
    """Every registered family at its defaults: the whole difficulty plane. Benchmark loaders are left out:
    they need published records (--data) and sit where their data puts them."""
    from longscope.tasks import TASKS

    task_names = [
        name
        for name in task_names
        if name not in TASKS or not (TASKS.get(name).published or TASKS.get(name).reads_data)
    ]
    return Suite(
        name="plane",
        description="every task family at its defaults, covering the difficulty plane",
        tasks=tuple(task_names),
        # Many-label ICL and three concurrent threads need more than 1k tokens at their defaults.
        lengths=("2k", "4k", "8k"),
        depths=(0.5,),
        samples=1,
    )


def load_suite(name_or_path: str, task_names: list[str]) -> Suite:
    """A built-in suite by name, or a suite file (``.toml``, ``.yaml``/``.yml`` or ``.json``)."""
    if name_or_path == "plane":
        return plane_suite(task_names)
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if not path.suffix:
        known = ", ".join([*BUILTIN, "plane"])
        raise UsageError(
            f"unknown suite {name_or_path!r}; built-in suites: {known}, or give a .toml/.yaml file"
        )
    if not path.is_file():
        raise UsageError(f"suite file {path} does not exist")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise UsageError(f"suite file {path} must end in .toml, .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # tomllib, json and yaml each raise their own parse errors
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)  # yaml puts the place apart from its first line
        if mark is not None:
            detail = f"{getattr(exc, 'problem', None) or detail} (at line {mark.line + 1}, column {mark.column + 1})"
        raise UsageError(f"cannot read suite file {path}: {detail}") from None
    return _suite_from_mapping(raw, path)


def _suite_from_mapping(raw: object, path: Path) -> Suite:
    if not isinstance(raw, dict):
        raise UsageError(f"suite file {path} must hold a mapping with at least `tasks = [...]`")
    allowed = {"name", "description", "tasks", "lengths", "depths", "samples", "mode"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise UsageError(f"suite file {path}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(allowed))}")
    tasks = raw.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise UsageError(f"suite file {path}: `tasks` must be a non-empty list of task names")
    lengths = raw.get("lengths", [])
    depths = raw.get("depths", [])
    samples = raw.get("samples")
    if not isinstance(lengths, list) or not isinstance(depths, list):
        raise UsageError(f"suite file {path}: `lengths` and `depths` must be lists")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise UsageError(f"suite file {path}: `samples` must be a positive whole number")
    mode = raw.get("mode")
    if mode is not None and mode not in MODES:
        raise UsageError(f"suite file {path}: `mode` must be one of {', '.join(MODES)}")
    try:
        depth_values = tuple(float(d) for d in depths)
    except (TypeError, ValueError):
        raise UsageError(f"suite file {path}: `depths` must be numbers between 0 and 1") from None
    return Suite(
        name=str(raw.get("name", path.stem)),
        description=str(raw.get("description", f"suite from {path.name}")),
        tasks=tuple(tasks),
        lengths=tuple(str(n) for n in lengths),
        depths=depth_values,
        samples=samples,
        mode=mode,
    )

"""The run configuration: every option that decides what a run computes, its defaults, and its command line."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from typing import Any

from longscope.analysis.effective_length import DEFAULT_THRESHOLD
from longscope.core import UsageError
from longscope.spec import format_length, parse_depths, parse_lengths, split_list

DEFAULT_SUITE = "quick"
# multi-turn-own: a conversation whose earlier replies are the model's own answers, not the gold ones (SCBench's
# --disable_golden_context).
MODES = ("independent", "multi-request", "multi-turn", "multi-turn-own")
# Bounds that keep a mistyped number from planning work that never ends (a million seeds per task, length and
# depth is already far beyond any evaluation).
MAX_SAMPLES = 1_000_000
MAX_RETRIES = 1000


@dataclass
class RunConfig:
    """Everything that decides what a run computes; stored with the run, and turned back into the command
    line that re-runs it (``to_argv``). The defaults here are the only defaults: the CLI and the suites fill
    what a user leaves out from them."""

    model: str = "smollm2"
    suite: str | None = DEFAULT_SUITE  # where tasks, lengths, depths and samples came from (a record only)
    # Several questions over each context, each asking a different needle: the quick suite runs them over 5
    # contexts per task and length, each prefilled once (multi-request), which gives intervals of about +-10-14
    # points at each length within the default run's few minutes.
    tasks: list[str] = field(
        default_factory=lambda: [
            "niah(questions=6,max_new_tokens=12)", "niah_multikey(questions=8,value_type=word,max_new_tokens=8)",
        ]
    )  # fmt: skip
    lengths: list[int] = field(default_factory=lambda: [1024, 2048, 4096])
    depths: list[float] = field(default_factory=lambda: [0.5])
    samples: int = 1
    seed: int = 0
    retries: int = 1
    threshold: float = DEFAULT_THRESHOLD
    # For samples above the model window: middle, left, right or skip; None: each task's own rule (a
    # published benchmark's, middle for the rest).
    truncation: str | None = None
    methods: list[str] = field(default_factory=lambda: ["full"])
    mode: str = "independent"  # how a sample's turns share its context: one of MODES
    data: str | None = None  # a file or directory of published benchmark records
    limit: int | None = None  # at most this many records per published benchmark (subset)
    judge: str | None = (
        None  # the model URI that grades open-ended outputs (longscope.judging); None: no judge
    )

    # -- the command line -------------------------------------------------------------------------------

    def to_argv(self) -> list[str]:
        """The ``longscope run`` options that reproduce this configuration exactly, every plan-deciding option
        written out (tasks, lengths and depths listed, not left to a suite whose contents may change)."""
        argv = ["--model", self.model, "--tasks", ",".join(self.tasks)]
        argv += ["--lengths", ",".join(format_length(n) for n in self.lengths)]
        argv += ["--depths", ",".join(f"{d:g}" for d in self.depths)]
        argv += ["--samples", str(self.samples), "--seed", str(self.seed), "--retries", str(self.retries)]
        argv += [
            "--threshold",
            f"{self.threshold:g}",
            "--methods",
            ",".join(self.methods),
            "--mode",
            self.mode,
        ]
        if self.truncation is not None:
            argv += ["--truncation", self.truncation]
        if self.data is not None:
            argv += ["--data", self.data]
        if self.limit is not None:
            argv += ["--limit", str(self.limit)]
        if self.judge is not None:
            argv += ["--judge", self.judge]
        return argv

    @classmethod
    def from_argv(cls, argv: list[str]) -> RunConfig:
        """The inverse of ``to_argv``: ``--option value`` pairs read with the same grammar as the CLI."""
        if len(argv) % 2:
            raise UsageError(f"options come in --name value pairs; {argv[-1]!r} has no value")
        options: dict[str, str] = {}
        for flag, value in zip(argv[::2], argv[1::2], strict=True):
            name = flag.removeprefix("--").replace("-", "_")
            if not flag.startswith("--") or name not in _OPTION_FIELDS:
                raise UsageError(f"unknown option {flag!r}; options: {', '.join(sorted(_OPTION_FIELDS))}")
            options[name] = value
        return cls.from_options(suite=None, **options)

    @classmethod
    def from_options(
        cls,
        *,
        suite: Any = None,
        model: str | None = None,
        tasks: str | None = None,
        lengths: str | None = None,
        depths: str | None = None,
        samples: str | int | None = None,
        seed: str | int | None = None,
        retries: str | int | None = None,
        threshold: str | float | None = None,
        truncation: str | None = None,
        methods: str | None = None,
        mode: str | None = None,
        data: str | None = None,
        limit: str | int | None = None,
        judge: str | None = None,
    ) -> RunConfig:
        """A configuration from command-line text: what is given wins, then the suite (a ``suites.Suite``),
        then the defaults above."""
        base = cls()
        chosen: dict[str, Any] = {}
        if suite is not None:
            chosen["suite"] = suite.name
            chosen["tasks"] = list(suite.tasks)
            if suite.lengths:
                chosen["lengths"] = parse_lengths(",".join(suite.lengths))
            if suite.depths:
                chosen["depths"] = parse_depths(",".join(f"{d:g}" for d in suite.depths))
            # The suite's samples and mode go with the suite's own tasks (questions sharing a context, say).
            if suite.samples and tasks is None:
                chosen["samples"] = suite.samples
            if suite.mode and tasks is None:
                chosen["mode"] = suite.mode
            if getattr(suite, "methods", ()) and methods is None:
                chosen["methods"] = list(suite.methods)
        else:
            chosen["suite"] = None
        if model is not None:
            chosen["model"] = model
        if tasks is not None:
            chosen["tasks"] = split_list(tasks)
        if lengths is not None:
            chosen["lengths"] = parse_lengths(lengths)
        if depths is not None:
            chosen["depths"] = parse_depths(depths)
        for name, value in (("samples", samples), ("seed", seed), ("retries", retries), ("limit", limit)):
            if value is not None:
                chosen[name] = _whole(name, value)
        if threshold is not None:
            try:
                chosen["threshold"] = float(threshold)
            except ValueError:
                raise UsageError(f"--threshold must be a number from 0 to 100 (got {threshold!r})") from None
        if truncation is not None:
            chosen["truncation"] = truncation
        if methods is not None:
            chosen["methods"] = split_list(methods)
        if mode is not None:
            chosen["mode"] = mode
        if data is not None:
            chosen["data"] = data
        if judge is not None:
            chosen["judge"] = judge
        return dataclasses.replace(base, **chosen)

    def validate(self) -> None:
        """Checks that need no model and no task registry: ranges and choices, one line each."""
        if not self.tasks:
            raise UsageError("no tasks given; `longscope tasks` lists them")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise UsageError(f"--samples must be from 1 to {MAX_SAMPLES:,} (got {self.samples})")
        # Seeds are stored as SQLite integers: every seed of the plan must fit in 64 bits.
        if not -(2**63) <= self.seed <= 2**63 - 1 - self.samples:
            raise UsageError(f"--seed {self.seed} is out of range; seeds are 64-bit integers, e.g. --seed 0")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {self.limit})")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise UsageError(f"--retries must be from 0 to {MAX_RETRIES} (got {self.retries})")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        for depth in self.depths:
            if not 0.0 <= depth <= 1.0:
                raise UsageError(f"depth {depth:g} is outside [0, 1]")
        if not self.methods:
            raise UsageError("no methods given; write for example --methods full,snapkv:0.5")
        if not 0.0 <= self.threshold <= 100.0:
            raise UsageError(f"--threshold is a score from 0 to 100 (got {self.threshold:g})")

    def plan_differences(self, other: dict[str, Any]) -> list[str]:
        """What makes another stored configuration a different plan (different rows), in words; empty when the
        two plan the same rows. The threshold, retries and the suite's name change no row; the model is checked
        apart, by the identity of the weights it loads."""
        theirs = RunConfig.from_dict(other)
        differences = []
        for name in _PLAN_FIELDS:
            mine, old = getattr(self, name), getattr(theirs, name)
            if mine != old:
                differences.append(f"{name} {_show(old)} there, {_show(mine)} here")
        return differences

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """A stored configuration; keys an older longscope did not write take today's defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


_OPTION_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"suite"}
_PLAN_FIELDS = [
    f.name for f in dataclasses.fields(RunConfig) if f.name not in ("suite", "retries", "threshold", "model")
]


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(format_length(v) if isinstance(v, int) else str(v) for v in value)
    return str(value)


def _whole(name: str, value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"--{name} must be a whole number (got {value!r})") from None
    if not -(2**63) <= number < 2**63:
        raise UsageError(f"--{name} {number} is out of range; give a number below 2**63")
    return number


def rerun_command(config: RunConfig, run_dir: str) -> str:
    """The shell line that re-creates a run's rows into ``run_dir``."""
    return shlex.join(["longscope", "run", *config.to_argv(), "--out", run_dir])

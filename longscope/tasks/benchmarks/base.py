"""What every published-benchmark loader shares: reading and validating records, and one sample per record."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import shorten
from typing import Any, ClassVar

from longscope.cache import stable_hash
from longscope.core import Backend, Sample, UsageError
from longscope.tasks.base import Task

FORMATS = (".jsonl", ".json", ".parquet")
# The largest JSONL record read: above the longest published contexts (LongBench v2's 2M words, about 12 MB),
# far below what would take gigabytes to tokenise. A longer line is skipped with its reason, read in pieces so
# that it never sits in memory whole.
MAX_RECORD_BYTES = 16 * 1024 * 1024
_READ_PIECE = 1024 * 1024
_COUNTED = (
    "prompt_tokens",
    "realised_tokens",
    "realised_chars",
    "context_chars",
    "length_bucket",
    "tokenizer",
)


@dataclass(frozen=True)
class Record:
    """One validated record of a benchmark file, with where it came from for messages and skipped rows."""

    ref: str  # "hotpotqa.jsonl:7" (file and line), "data.json#3" (file and index) or "hub:THUDM/LongBench/hotpotqa#7"
    data: dict[str, Any]
    subset: str = ""  # the subset it was loaded for; "" when one file was read with no subset named


# ---------------------------------------------------------------------------------------------------------
# Reading files and the hub


def read_records(path: str | os.PathLike) -> Iterator[tuple[str, dict | str]]:
    """Every record of a .jsonl, .json (a list of records, or {"data": [...]}) or .parquet file, as
    (reference, record), or (reference, reason) for a line that cannot be read. A file that cannot be read
    as its format at all raises a UsageError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"cannot read {path}: benchmark data must be a {', '.join(FORMATS)} file or a directory"
        )
    if not path.is_file():
        raise UsageError(f"cannot read {path}: no such file")
    if suffix == ".parquet":
        yield from _read_parquet(path)
        return
    if suffix == ".jsonl":
        yield from _read_jsonl(path)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {_first_line(exc)}") from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        # JSON lines saved under a .json name are common enough to accept: the first line is a whole object.
        if exc.msg == "Extra data" and _is_object(text.lstrip().split("\n", 1)[0]):
            yield from _read_lines(path.name, text)
            return
        raise UsageError(f"cannot read {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("data"), list):
        loaded = loaded["data"]
    if not isinstance(loaded, list):
        raise UsageError(f'cannot read {path}: a .json file must hold a list of records or {{"data": [...]}}')
    for index, item in enumerate(loaded):
        ref = f"{path.name}#{index}"
        yield (ref, item) if isinstance(item, dict) else (ref, f"not a JSON object ({type(item).__name__})")


def _read_lines(name: str, text: str) -> Iterator[tuple[str, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"{name}:{number}", _parse_line(line)


def _parse_line(line: str) -> dict | str:
    """One JSON-lines record, or the reason it is not one."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    return item if isinstance(item, dict) else f"not a JSON object ({type(item).__name__})"


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict | str]]:
    """A JSONL file line by line: a line that is too long, not UTF-8 or not a JSON object is reported by its
    number and skipped, and the other lines are read."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {_first_line(exc)}") from None
    with handle:
        number = 0
        while True:
            raw = handle.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            number += 1
            ref = f"{path.name}:{number}"
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                size = len(raw) + _skip_line(handle)
                yield (
                    ref,
                    f"a record of {size:,} bytes, over the {MAX_RECORD_BYTES // 2**20} MiB read per record",
                )
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield ref, f"not UTF-8 text (byte {exc.start + 1})"
                continue
            if line.strip():
                yield ref, _parse_line(line.rstrip("\r\n"))


def _skip_line(handle) -> int:
    """Read past the rest of an over-long line in pieces; the bytes skipped, not counting the line's end."""
    skipped = 0
    while True:
        piece = handle.readline(_READ_PIECE)
        skipped += len(piece.rstrip(b"\r\n"))
        if not piece or piece.endswith(b"\n"):
            return skipped


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _read_parquet(path: Path) -> Iterator[tuple[str, dict | str]]:
    import pyarrow
    import pyarrow.parquet

    try:
        rows = pyarrow.parquet.read_table(path).to_pylist()
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"cannot read {path}: not a Parquet file ({_first_line(exc)})") from None
    for index, row in enumerate(rows):
        yield f"{path.name}#{index}", row


def load_hub(args: dict[str, Any], name: str | None = None) -> list[dict]:
    """The records of a hub dataset via ``datasets.load_dataset(**args)`` (never with remote code); the local
    datasets cache answers when the hub does not. Unreachable → one UsageError line telling to pass --data.
    ``name`` is the dataset as messages call it (default: ``args["path"]``)."""
    import datasets

    where = name or args.get("path", "?")
    try:
        loaded = datasets.load_dataset(**args)
    except Exception as exc:  # noqa: BLE001 - offline, missing, gated or unsupported all end in the same advice
        raise UsageError(
            f"cannot reach the dataset hub for {where} (offline?): {shorten(_first_line(exc), 160, placeholder='...')}; "
            "download the data and pass --data PATH"
        ) from None
    return [dict(row) for row in loaded]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).strip()


# ---------------------------------------------------------------------------------------------------------
# Field checks


def type_name(kind: Any) -> str:
    """``list[str]``, ``str | None``, ``int``: the type as a user would write it."""
    if isinstance(kind, type):
        return kind.__name__
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in typing.get_args(kind))
    return str(kind).replace("typing.", "")


def is_of(value: Any, kind: Any) -> bool:
    """Whether ``value`` (as decoded from JSON) has type ``kind``: str, int, float (an int counts), bool,
    dict, list, list[X], dict[K, V], unions with None. A bool is not an int."""
    if kind is Any:
        return True
    if kind is None or kind is type(None):
        return value is None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(is_of(value, arg) for arg in typing.get_args(kind))
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return isinstance(value, list) and all(is_of(element, item) for element in value)
    if origin is dict:
        key, item = typing.get_args(kind) or (Any, Any)
        return isinstance(value, dict) and all(is_of(k, key) and is_of(v, item) for k, v in value.items())
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_fields(data: dict, fields: dict[str, Any]) -> str | None:
    """The first problem with the required ``fields`` (name -> type) of a record, or None when all is well."""
    for name, kind in fields.items():
        if name not in data:
            return f"field {name!r} is missing"
        if not is_of(data[name], kind):
            return f"field {name!r} should be {type_name(kind)}, got {_describe(data[name])}"
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list) and value:
        kinds = dict.fromkeys("null" if v is None else type(v).__name__ for v in value)
        return f"list of {' and '.join(kinds)}"
    return type(value).__name__


def length_bucket(tokens: int) -> int:
    """Tokens rounded up to a power of two times 1024, at least 1024: the length a record is summarised at."""
    return 1024 * 2 ** max(0, math.ceil(math.log2(max(tokens, 1) / 1024)))


# ---------------------------------------------------------------------------------------------------------
# The loader base


@dataclass(frozen=True)
class Benchmark(Task):
    """A published benchmark: one sample per valid record, in the benchmark's own prompt, output cap,
    chat-template rule and truncation rule, scored by its own metric.

    A loader declares ``hub_id``, ``subsets``, ``fields`` and ``truncation`` and implements ``data_files``,
    ``to_sample`` (and, where needed, ``hub_args``, ``validate``, ``metric``). With ``subset=""`` and subsets
    declared, the loader reads every subset of ``default_subsets`` (all of ``subsets`` unless it says
    otherwise); from a --data directory, those whose files are there.
    """

    published: ClassVar[bool] = True
    hub_id: ClassVar[str] = ""
    subsets: ClassVar[tuple[str, ...]] = ()
    default_subsets: ClassVar[tuple[str, ...] | None] = None  # what subset="" reads; None: all of `subsets`
    fields: ClassVar[dict[str, Any]] = {}
    truncation: ClassVar[str] = "middle"  # the benchmark's own rule for over-long records
    id_field: ClassVar[str | None] = "_id"  # the record field that names it, for stable sample ids

    subset: str = ""
    data: str | None = None  # a file or a directory; None: the hub, then the local datasets cache
    limit: int | None = None  # the first N valid records (of each subset read)
    max_new_tokens: int | None = None  # None: the benchmark's own cap; a number overrides it

    # A file given alone as --data names its subset by its file name (passkey.jsonl): loaders whose subsets
    # differ in prompt, cap or metric need to know which one a lone file holds.
    subset_from_file: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.subset_from_file and not self.subset and self.data is not None:
            path = Path(self.data).expanduser()
            if path.is_file():
                stem = path.name.split(".")[0]
                if stem not in self.subsets:
                    raise UsageError(
                        f"cannot tell which {self.name} subset {self.data} holds; name it, e.g. "
                        f"{self.name}:{self.subsets[0]} (subsets: {', '.join(self.subsets)})"
                    )
                object.__setattr__(self, "subset", stem)
        if self.subset and not self.subsets:
            raise UsageError(f"{self.name} has no subsets; write it as {self.name} without ':{self.subset}'")
        if self.subset and self.subset not in self.subsets:
            raise UsageError(
                f"unknown subset {self.subset!r} of {self.name}; subsets: {', '.join(self.subsets)}"
            )
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"{self.name}: limit must be at least 1 (got {self.limit})")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"{self.name}: max_new_tokens must be at least 1 (got {self.max_new_tokens})")

    # --- what a loader implements -------------------------------------------------------------------

    def data_files(self) -> list[str]:
        """File names (relative) to look for inside a --data directory for ``self.subset``, best first."""
        stem = self.subset or "data"
        return [f"{stem}.jsonl", f"data/{stem}.jsonl", f"{stem}.json", f"{stem}.parquet"]

    def hub_args(self) -> dict[str, Any]:
        """Keyword arguments of ``datasets.load_dataset`` for ``self.subset``."""
        args: dict[str, Any] = {"path": self.hub_id, "split": "test"}
        if self.subset:
            args["name"] = self.subset
        return args

    def hub_file(self, path_in_repo: str) -> dict[str, Any]:
        """``load_dataset`` arguments reading one published file of the hub repository as plain JSON: the
        repository's loading script (remote code) never runs, and each file's own field types stand."""
        url = f"https://huggingface.co/datasets/{self.hub_id}/resolve/main/{path_in_repo}"
        return {"path": "json", "data_files": {"test": url}, "split": "test"}

    def validate(self, data: dict) -> str | None:
        """Checks beyond the types in ``fields``: a reason the record cannot be used, or None. Called on the
        task of the subset the record was read for, so ``self.subset`` names it."""
        return None

    # A loader that tables its subsets' metrics and plane coordinates names them here; the whole benchmark
    # (no subset) is then scored by each record's own metric and placed at the mean of its subsets.
    subset_metrics: ClassVar[dict[str, str]] = {}
    subset_planes: ClassVar[dict[str, tuple[float, float]]] = {}

    @property
    def metric(self) -> str:
        return self.subset_metrics.get(self.subset, "per_record")

    @property
    def diffusion(self) -> float:
        return self.plane()[0]

    @property
    def scope(self) -> float:
        return self.plane()[1]

    def plane(self) -> tuple[float, float]:
        if self.subset in self.subset_planes:
            return self.subset_planes[self.subset]
        if not self.subset_planes:
            raise NotImplementedError(f"{self.name} places itself on the difficulty plane")
        points = list(self.subset_planes.values())
        return (
            round(sum(d for d, _ in points) / len(points), 2),
            round(sum(s for _, s in points) / len(points), 2),
        )

    def selects(self, data: dict) -> bool:
        """Whether a valid record is wanted (a loader's filter parameters, e.g. difficulty=hard); records not
        selected are left out silently, before ``limit`` counts."""
        return True

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        """The record in the benchmark's own prompt; ``build`` adds the common metadata."""
        raise NotImplementedError

    # --- provided ---------------------------------------------------------------------------------------

    def records(self) -> list[Record]:
        """The valid records (read once per instance), ``limit`` applied to each subset read."""
        return self._loaded()[0]

    def rejected(self) -> list[tuple[str, str]]:
        """(reference, reason) for every record read that could not be used (with a limit, reading stops once
        it is reached); the runner writes a skipped row for each."""
        return self._loaded()[1]

    def with_data(self, data: str | None) -> Benchmark:
        return dataclasses.replace(self, data=data) if self.data is None and data is not None else self

    def work(
        self, lengths: list[int], depths: list[float], seeds: list[int]
    ) -> list[tuple[int, float | None, int]]:
        """One point per valid record, whatever the run's lengths, depths and seeds: its index as the seed."""
        return [(0, None, index) for index in range(len(self.records()))]

    def check(self, backend: Backend, length: int) -> None:
        """Read the data now, so that a missing file or an unreachable hub fails the run before any work."""
        self.records()

    def label(self) -> str:
        """``longbench:hotpotqa(limit=20)``: as the command line writes it. Where the data was read from is
        left out, so labels and sample ids are the same on every machine."""
        defaults = type(self)()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in ("subset", "data") and getattr(self, f.name) != getattr(defaults, f.name)
        ]
        subset = f":{self.subset}" if self.subset else ""
        return self.name + subset + (f"({','.join(changed)})" if changed else "")

    def record_id(self, record: Record, index: int) -> str:
        """The record's own id (``id_field``) when it has one, else its index; unique within this task."""
        return self._ids()[index]

    def sample_id(self, length: int, depth: float | None, seed: int) -> str:
        return f"{self.label()}/{self.record_id(self.records()[seed], seed)}"

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        records = self.records()
        if not 0 <= seed < len(records):
            raise UsageError(f"{self.label()} has {len(records)} records; there is no record {seed}")
        record = records[seed]
        sample = self.to_sample(record, seed, backend)
        if self.max_new_tokens is not None:
            sample = dataclasses.replace(sample, max_new_tokens=self.max_new_tokens)
        common = {**self.metadata(record, backend, sample), "seed": seed}
        # The loader's own keys win (it may know the record's subset better), except the counts of the
        # request as it is now, which only the finished sample can give.
        counted = {key: common[key] for key in _COUNTED}
        return dataclasses.replace(
            sample, id=self.sample_id(length, depth, seed), metadata={**common, **sample.metadata, **counted}
        )

    def metadata(self, record: Record, backend: Backend, sample: Sample) -> dict[str, Any]:
        """What every benchmark sample records, so runner and report need nothing benchmark-specific."""
        prompt = backend.render(sample.messages(0), sample.turns[0].answer_prefix, sample.chat)
        prompt_tokens = backend.count_tokens(prompt)
        realised = prompt_tokens + sample.max_new_tokens
        meta: dict[str, Any] = {
            "benchmark": self.name,
            "subset": record.subset or self.subset,
            "record": record.ref,
            "params": self.params(),
            "prompt_tokens": prompt_tokens,
            "realised_tokens": realised,
            "realised_chars": len(prompt),
            "context_chars": len(sample.context),
            "length_bucket": length_bucket(realised),
            "truncation": "none",
            "tokenizer": backend.tokenizer_fingerprint(),
            "diffusion": self.diffusion,
            "scope": self.scope,
        }
        if not backend.capabilities.exact_tokens:
            meta["approximate_tokens"] = True
        return meta

    def cache_token(self) -> str:
        """A hash of the data source: each file read (path, size, modification time), or the hub arguments."""
        if self.data is None:
            return stable_hash(["hub", [self._for(s).hub_args() for s in self.read_subsets()]])
        files = [path for _, path in self._local_files()]
        return stable_hash([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files])

    # --- loading ----------------------------------------------------------------------------------------

    def read_subsets(self) -> list[str]:
        """The subsets this instance reads: the one named, else ``default_subsets`` (a loader may override)."""
        if self.subset or not self.subsets:
            return [self.subset]
        return list(self.subsets if self.default_subsets is None else self.default_subsets)

    def _for(self, subset: str) -> Benchmark:
        return self if subset == self.subset else dataclasses.replace(self, subset=subset)

    def _local_files(self) -> list[tuple[str, Path]]:
        """(subset, file) pairs to read from ``data``: the file itself, or the subsets' files in a directory."""
        assert self.data is not None
        path = Path(self.data).expanduser()
        if path.is_file():
            return [(self.subset, path)]
        if not path.is_dir():
            raise UsageError(f"--data {self.data}: no such file or directory")
        found, looked_for = [], []
        for subset in self.read_subsets():
            names = self._for(subset).data_files()
            looked_for += names
            hit = next((path / name for name in names if (path / name).is_file()), None)
            if hit is None and len(self.read_subsets()) == 1:
                break
            if hit is not None:
                found.append((subset, hit))
        if not found:
            shown = ", ".join(looked_for[:8]) + (
                f" (and {len(looked_for) - 8} more)" if len(looked_for) > 8 else ""
            )
            raise UsageError(
                f"--data {self.data} holds none of the files {self.label()} reads: {shown}; "
                "pass the file itself or a directory holding it"
            )
        return found

    def _sources(self) -> Iterator[tuple[str, Iterator[tuple[str, dict | str]]]]:
        if self.data is not None:
            for subset, path in self._local_files():
                yield subset, read_records(path)
            return
        for subset in self.read_subsets():
            args = self._for(subset).hub_args()
            rows = load_hub(args, self.hub_id or None)
            where = "/".join(part for part in (self.hub_id or str(args.get("path")), subset) if part)
            yield subset, ((f"hub:{where}#{index}", row) for index, row in enumerate(rows))

    def _loaded(self) -> tuple[list[Record], list[tuple[str, str]]]:
        cached = self.__dict__.get("_cache")
        if cached is not None:
            return cached
        valid: list[Record] = []
        bad: list[tuple[str, str]] = []
        for subset, rows in self._sources():
            kept = seen = unreadable = mistyped = 0
            for ref, row in rows:
                if self.limit is not None and kept >= self.limit:
                    break
                seen += 1
                if isinstance(row, str):
                    unreadable += 1
                    bad.append((ref, row))
                    continue
                reason = check_fields(row, self.fields) or self._for(subset).validate(row)
                if reason is not None:
                    mistyped += 1
                    bad.append((ref, reason))
                    continue
                if not self.selects(row):
                    continue
                valid.append(Record(ref=ref, data=row, subset=subset))
                kept += 1
            if not seen:
                where = self.data if self.data is not None else f"{self.label()} on the hub"
                raise UsageError(f"{where} holds no records for {self.label()}; is it the right file?")
            where = ref.rsplit(":", 1)[0].rsplit("#", 1)[0]
            if unreadable == seen:
                raise UsageError(f"{where} holds no readable JSON records; is it in the right format?")
            if unreadable + mistyped == seen:
                # Every record has the wrong fields: most likely another benchmark's file, so nothing is run.
                first = next(reason for ref_, reason in bad if ref_.startswith(where))
                raise UsageError(
                    f"{where}: none of its {seen} records fits {self.label()} (the first: {first}); "
                    "is it this benchmark's file?"
                )
        object.__setattr__(self, "_cache", (valid, bad))
        return valid, bad

    def _ids(self) -> list[str]:
        cached = self.__dict__.get("_id_cache")
        if cached is not None:
            return cached
        ids: list[str] = []
        taken: set[str] = set()
        for index, record in enumerate(self.records()):
            own = record.data.get(self.id_field) if self.id_field else None
            name = str(own) if own not in (None, "") else f"r{index}"
            if not self.subset and record.subset:  # several subsets read at once: their ids may repeat
                name = f"{record.subset}/{name}"
            if name in taken:  # a repeated id would merge two rows into one result key
                name = f"{name}~{index}"
            taken.add(name)
            ids.append(name)
        object.__setattr__(self, "_id_cache", ids)
        return ids

"""Bring-your-own data: ``custom(path=FILE, metric=NAME)`` reads a JSON, JSONL, Parquet or CSV file of records
with a context, a question and gold answers (field names mappable) and scores them with any registered scorer (``metric=judge``: graded by the run's --judge against the first answer).

A record needs ``context`` (text), ``question`` (text) and ``answers`` (a list of texts, or one text; numbers
are taken as their text; in a CSV cell a JSON list such as ``["Paris", "paris, France"]`` is a list). It may
have ``id`` (names the sample), ``length`` (the record's own length, kept in the metadata for breakdowns) and
``evidence`` (one text or a list: exact substrings of the context that carry the answer). Any other field is
kept in the sample's metadata, where a scorer that reads metadata (``classification``'s ``all_classes``) finds
it. ``custom(path=F, question=query, answers=gold)`` maps the file's own field names.

Records are validated and a bad one is reported by its line (or index) and skipped while the rest run, as for
the published loaders; lengths and over-long records (truncated in the middle unless --truncation says
otherwise) are handled as for them. A file whose records all lack a needed field is refused up front in one
line naming the missing fields and those found, and saying which published benchmark's records the file has the shape of.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.scoring import SCORERS
from longscope.tasks.benchmarks.base import Benchmark, Record, read_records

# The fields a record has, as the loader calls them; each is a parameter naming the file's own field.
NEEDED = ("context", "question", "answers")
OPTIONAL = ("id", "length", "evidence")
DEFAULT_TEMPLATE = "{context}\n\nQuestion: {question}"
ANSWER_PREFIX = "Answer:"
DEFAULT_CAP = 64
SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
# Metadata keys the loader and the runner set themselves: a record's own field of that name is not copied.
RESERVED = frozenset(
    {"benchmark", "subset", "record", "params", "prompt_tokens", "realised_tokens", "realised_chars",
     "context_chars", "length_bucket", "truncation", "tokenizer", "diffusion", "scope", "seed", "metric",
     "stop", "target_length", "approximate_tokens", "rejected"}
)  # fmt: skip


def read_csv(path: Path) -> Iterator[tuple[str, dict | str]]:
    """Each row of a CSV file with a header line, as (``name:line``, record) or (``name:line``, reason) for a
    row whose cells do not match the header. Empty cells are absent fields."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError(f"cannot read {path}: the CSV file is empty (it needs a header line)") from None
    except csv.Error as exc:
        raise UsageError(f"cannot read {path}: not a CSV file ({exc})") from None
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield f"{path.name}:{line}", f"not a CSV row ({exc})"
            continue
        if not any(cell.strip() for cell in cells):
            continue
        ref = f"{path.name}:{line}"
        if len(cells) != len(header):
            yield ref, f"has {len(cells)} cells where the header has {len(header)}"
            continue
        yield ref, {name: cell for name, cell in zip(header, cells, strict=True) if cell != ""}


def read_any(path: Path) -> Iterator[tuple[str, dict | str]]:
    """Records of a .jsonl, .json, .parquet or .csv file (see ``read_records`` and ``read_csv``)."""
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"cannot read {path}: custom data must be a {', '.join(SUFFIXES)} file")
    return read_records(path)


def _texts(value: Any, csv_cell: bool) -> list[str] | None:
    """A field that holds one text or a list of texts, as a list; None when it is neither. Numbers count as
    their text (gold answers are often numbers in JSON); a CSV cell holding a JSON list is that list."""
    if csv_cell and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, list):
            value = decoded
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
        return None
    return [v if isinstance(v, str) else str(v) for v in items]


def looks_like(keys: set[str]) -> str | None:
    """The published benchmark (task name, and subset where one says) whose record shape ``keys`` has: of
    those whose declared fields are all there, the one that declares the most (the closest fit)."""
    from longscope.tasks import TASKS

    best: tuple[int, str] | None = None
    for name, cls in TASKS.items():
        if name == Custom.name:
            continue
        shapes = getattr(cls, "shapes", None) or {"": getattr(cls, "fields", None) or {}}
        for subset, fields in shapes.items():
            if fields and set(fields) <= keys and (best is None or len(fields) > best[0]):
                best = (len(fields), f"{name}:{subset}" if subset else name)
    return None if best is None else best[1]


@dataclass(frozen=True)
class Custom(Benchmark):
    """Your own records: ``custom(path=qa.jsonl, metric=qa_f1)``; map fields with ``question=query`` etc."""

    name: ClassVar[str] = "custom"
    description: ClassVar[str] = (
        "your own JSON/JSONL/Parquet/CSV records (context, question, answers; fields mappable), any scorer"
    )
    breakdowns: ClassVar[tuple[str, ...]] = ("length_bucket",)
    fields: ClassVar[dict[str, Any]] = {}  # checked by ``validate``, under the file's own field names
    truncation: ClassVar[str] = "middle"

    path: str | None = None  # the file; without it, the run's --data
    metric: str = "contains_any"  # any registered scorer
    template: str = DEFAULT_TEMPLATE  # the user message: {context} and {question} are filled in
    answer_prefix: str = ANSWER_PREFIX
    chat: bool = True  # False: the prompt is fed as plain text, without the model's chat template
    # The file's own names for each field the loader reads.
    context: str = "context"
    question: str = "question"
    answers: str = "answers"
    id: str = "id"
    length: str = "length"
    evidence: str = "evidence"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metric not in SCORERS:
            close = difflib.get_close_matches(self.metric, list(SCORERS), n=4, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"scorers: {', '.join(SCORERS)}"
            raise UsageError(f"custom: there is no scorer {self.metric!r}; {hint}")
        for placeholder in ("{context}", "{question}"):
            if placeholder not in self.template:
                raise UsageError(
                    f"custom: template must hold {placeholder} (got {self.template!r}); "
                    f"the default is {DEFAULT_TEMPLATE!r}"
                )
        mapped = [getattr(self, role) for role in NEEDED + OPTIONAL]
        repeated = sorted({name for name in mapped if mapped.count(name) > 1})
        if repeated:
            raise UsageError(f"custom: field {repeated[0]!r} is mapped to two roles; give each its own field")
        if self.path is not None:
            object.__setattr__(self, "data", self.path)

    @property
    def needs_judge(self) -> bool:
        """``metric=judge``: the run's --judge grades each reply against the record's first answer."""
        return self.metric == "judge"

    @property
    def id_field(self) -> str:  # type: ignore[override]
        return self.id

    def label(self) -> str:
        """``custom(path=qa.jsonl,metric=qa_f1)``: the file by its name only, so labels match across machines."""
        defaults = type(self)()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in ("subset", "data", "path") and getattr(self, f.name) != getattr(defaults, f.name)
        ]
        if self.path is not None:
            changed.insert(0, f"path={Path(self.path).name}")
        return self.name + (f"({','.join(changed)})" if changed else "")

    def data_files(self) -> list[str]:
        return ["custom.jsonl", "data.jsonl", "data.json", "data.parquet", "data.csv"]

    def hub_args(self) -> dict[str, Any]:
        raise UsageError("custom reads your own file: give it as custom(path=FILE) or --data FILE")

    def _sources(self) -> Iterator[tuple[str, Iterator[tuple[str, dict | str]]]]:
        if self.data is None:
            self.hub_args()
        for subset, path in self._local_files():
            yield subset, read_any(path)

    def _is_csv(self) -> bool:
        """Whether the file read is a CSV file, whose cells are all text (read once)."""
        cached = self.__dict__.get("_csv")
        if cached is None:
            cached = any(path.suffix.lower() == ".csv" for _, path in self._local_files())
            object.__setattr__(self, "_csv", cached)
        return cached

    def validate(self, data: dict) -> str | None:
        for role in NEEDED:
            if data.get(getattr(self, role)) is None:  # a null (Parquet's empty cell) is no value either
                return f"field {self._called(role)} is missing"
        for role in ("context", "question"):
            if not isinstance(data[getattr(self, role)], str):
                return f"field {self._called(role)} should be text"
        answers = _texts(data[self.answers], self._is_csv())
        if answers is None:
            return f"field {self._called('answers')} should be a text or a list of texts"
        if not answers or not any(a.strip() for a in answers):
            return "no gold answer"
        if data.get(self.length) is not None:
            length = data[self.length]
            if self._is_csv() and isinstance(length, str) and length.strip().isdigit():
                length = int(length)
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                return f"field {self._called('length')} should be a whole number"
        if data.get(self.evidence) is not None:
            evidence = _texts(data[self.evidence], self._is_csv())
            if evidence is None:
                return f"field {self._called('evidence')} should be a text or a list of texts"
            missing = next((e for e in evidence if e not in data[self.context]), None)
            if missing is not None:
                return f"evidence {missing[:60]!r} is not a substring of the context"
        return None

    def _called(self, role: str) -> str:
        """A field as the user knows it: ``'query' (question)`` when mapped, ``'question'`` otherwise."""
        own = getattr(self, role)
        return repr(own) if own == role else f"{own!r} ({role})"

    def _loaded(self) -> tuple[list[Record], list[tuple[str, str]]]:
        try:
            return super()._loaded()
        except UsageError:
            # No record fits: where a needed field is in no record at all, say which and what the file holds.
            better = self._missing_fields()
            if better is None:
                raise
            raise UsageError(better) from None

    def _missing_fields(self) -> str | None:
        """The line for a file none of whose records has a needed field: the fields missing, the fields found,
        and the benchmark whose shape they are; None when every needed field is in some record."""
        if self.data is None:
            return None
        found: set[str] = set()
        filled: set[str] = set()  # fields with a value (not null) in some record
        for _, path in self._local_files():
            for _, row in read_any(path):
                if isinstance(row, dict):
                    found |= set(row)
                    filled |= {key for key, value in row.items() if value is not None}
        absent = [role for role in NEEDED if getattr(self, role) not in filled]
        if not found or not absent:
            return None
        where = ", ".join(str(path) for _, path in self._local_files())
        names = ", ".join(self._called(role) for role in absent)
        shown = ", ".join(sorted(found)[:12]) + (", ..." if len(found) > 12 else "")
        line = f"custom: no record of {where} has the field(s) {names}; its fields: {shown}"
        other = looks_like(found)
        if other is not None:
            return f"{line}; it has the shape of {other} records: run it as --tasks {other} --data {where}"
        return f"{line}; map yours, e.g. custom(path=..., {absent[0]}=FIELD)"

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        data = record.data
        csv_cell = self._is_csv()
        answers = tuple(a for a in _texts(data[self.answers], csv_cell) or [] if a.strip())
        evidence = tuple(_texts(data.get(self.evidence), csv_cell) or []) if data.get(self.evidence) else ()
        taken = {getattr(self, role) for role in NEEDED + OPTIONAL} | RESERVED
        metadata: dict[str, Any] = {k: v for k, v in data.items() if k not in taken and _plain(v)}
        metadata["metric"] = self.metric
        if self.metric == "judge":  # the run's --judge grades the reply against the first answer
            metadata["judge_prompt"] = "reference"
        if data.get(self.length) is not None:
            metadata["length"] = int(data[self.length])
        template = self.template.replace("{", "{{").replace("}", "}}")
        template = template.replace("{{context}}", "{context}").replace("{{question}}", "{question}")
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data[self.context],
            turns=(Turn(question=data[self.question], answers=answers, answer_prefix=self.answer_prefix),),
            template=template,
            max_new_tokens=DEFAULT_CAP,
            chat=self.chat,
            metadata=metadata,
            evidence=evidence,
        )

    @property
    def diffusion(self) -> float:
        return 0.5  # unknown for data we have not seen: the middle of the plane

    @property
    def scope(self) -> float:
        return 0.5


def _plain(value: Any) -> bool:
    """Whether a record field can travel in the sample's JSON metadata as it is."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True

"""NeedleBench v2 (Li et al., 2024): single-needle retrieval, multi-needle retrieval and multi-needle reasoning,
built from NeedleBench's published needles and haystack texts and fitted to the run's exact lengths and depths.

Why built, not loaded: NeedleBench does not publish finished samples. Its data (hub dataset
``opencompass/NeedleBench``) are the ingredients: ``needles.jsonl`` (one needle a line: ``needle``,
``retrieval_question``, ``gold_standard_answer``, ``arg1``, ``arg2`` — the keyword the answer must contain —
and ``language``), ``names.json`` (names for the kinship chains of the reasoning task, comma-separated per
language) and the haystack texts, ``PaulGrahamEssays.jsonl`` (English) and ``zh_finance.jsonl`` (Chinese),
one ``{"text": ...}`` record a line. NeedleBench itself assembles every sample at a length and a depth with its
own (GPT-4) tokenizer; this task does the same in the evaluated model's tokenizer, so the whole request is the
run's length exactly. --data names a directory holding those files; without it they are read from the hub.

As NeedleBench v2 builds them (its question-at-the-end prompts, in English or Chinese):
- ``single``: one needle drawn from the seed, placed at the run's depth; score 1 if the reply contains the
  needle's keyword (``arg2``) verbatim, else 0.
- ``multi_retrieval``: needles with distinct ``arg1`` and ``arg2`` at NeedleBench's depths 0%, 10% ... 100% (or
  ``num_needles`` evenly spaced), the questions joined into one; score: the share of keywords in the reply.
- ``multi_reasoning``: a kinship chain of ``num_needles + 1`` names (2 to 5 needles in NeedleBench), one
  relation per needle, shuffled, placed from the run's depth on every 10% of the context; the model must name
  the eldest ancestor of the last person in ``\\boxed{}``; score 1 if the boxed name is the first of the chain.
Needles sit on sentence boundaries (NeedleBench cuts at the token), each wrapped in newlines as NeedleBench
wraps them. NeedleBench leaves the output cap to the model's configuration; the defaults here are 128 tokens
(single), 256 (multi-retrieval) and 512 (reasoning, which asks for an explanation), set by ``max_new_tokens``.
Breakdowns: ``depth`` (also as NeedleBench's percent, ``depth_percent``) and ``length_level``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from longscope.cache import stable_hash
from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, UnitSource, count_many, fit_context, split_sentences
from longscope.tasks.base import Task
from longscope.tasks.benchmarks.base import check_fields, load_hub, read_records

HUB_ID = "opencompass/NeedleBench"
SUBSETS = ("single", "multi_retrieval", "multi_reasoning")
LANGUAGES = {"en": "English", "zh": "Chinese"}
HAYSTACK_FILES = {"en": "PaulGrahamEssays.jsonl", "zh": "zh_finance.jsonl"}
NEEDLES_FILE = "needles.jsonl"
NAMES_FILE = "names.json"
OUTPUT_CAPS = {"single": 128, "multi_retrieval": 256, "multi_reasoning": 512}
RETRIEVAL_DEPTHS = tuple(d / 10 for d in range(11))  # NeedleBench's depths_list, 0% to 100%
CHAIN_STEP = 0.1  # NeedleBench's ``diff``: each later reasoning needle 10% of the context further on
NEEDLE_FIELDS: dict[str, Any] = {"needle": str, "retrieval_question": str, "arg2": str, "language": str}

# NeedleBench v2's prompts with the question at the end; «context», «question» and «last_person» are filled in.
_DOCUMENT_EN = (
    "The content of the long document is as follows\n\n<Document>\n«context»\n</Document>\n\n"
    "Based on the information in the document, now please answer: «question»\n"
)
_DOCUMENT_ZH = "长文档的内容如下\n\n<文档>\n«context»\n</文档>\n\n根据文档中的信息，现在请问：«question»\n"
_READ_EN = (
    "This is a test of long-text capability. You need to first read the long document below, and then answer "
)
_READ_ZH = "这是一个长文本能力的测试，你需要首先阅读下面的长文档，然后根据文档中的信息"
PROMPTS = {
    ("single", "en"): _READ_EN
    + "the final question based on the information in the document.\n"
    + _DOCUMENT_EN,
    ("single", "zh"): _READ_ZH + "回答最后的问题。\n" + _DOCUMENT_ZH,
    ("multi_retrieval", "en"): _READ_EN
    + "the final questions one by one based on the information in the document.\n"
    + _DOCUMENT_EN,
    ("multi_retrieval", "zh"): _READ_ZH + "，依次回答最后的问题。\n" + _DOCUMENT_ZH,
    ("multi_reasoning", "en"): _READ_EN
    + "the final question based on the information in the document.\n"
    + _DOCUMENT_EN
    + "\nFor example:\n"
    "Example 1: If James Hill's father is Jasmine Lane, and no further information about familial relationships "
    "is provided in the text, then the oldest relative James Hill can trace back to in the provided text is "
    "\\boxed{Jasmine Lane}.\n"
    "Example 2: If Andrew Williams's grandmother is Dan Newton, and Dan Newton's father is James Hill, and no "
    "further information about familial relationships is provided in the text, then the oldest relative Andrew "
    "Williams can trace back to in the provided text is \\boxed{James Hill}.\n"
    "Example 3: If Jeff White's father is Kevin Le, Dan Newton's grandmother is Jeff White, and Jeff White's "
    "father is Kevin Le, and Shelley Mills is Dan Newton's great-granddaughter, and no further information about "
    "familial relationships is provided in the text, then the oldest relative Shelley Mills can trace back to in "
    "the provided text is \\boxed{Kevin Le}.\n\n"
    "Notes:\n"
    "1. You do not need to worry about the gender consistency of names in this test. For example, a name that is "
    "typically considered feminine can still be the father of another person. Our primary focus is on who is "
    "older.\n"
    "2. Ignore surname inheritance issues. For instance, Andrew Williams could still be the biological father of "
    "Christopher Baker. We only care about who is older and do not need to consider whether a child should "
    "inherit the father's or mother's surname.\n"
    '3. At the end of your response, remember to put your final answer within \\boxed{}. For example: "So the '
    "oldest relative '«last_person»' can trace back to in the provided text is \\boxed{(your answer here)}.\"\n\n",
    ("multi_reasoning", "zh"): _READ_ZH + "回答最后的问题。\n" + _DOCUMENT_ZH + "\n例如：\n"
    "例子1.如果张强的父亲是马克，除此以外提供的文本中没有更多关于亲属关系的信息，那么在提供的文本中张强能够向上追溯到的"
    "最年长的亲人就是马克。\n"
    "例子2.如果李明的姥姥是张红，而张红的父亲是张强，除此以外提供的文本中没有更多关于亲属关系的信息，那么在提供的文本中"
    "李明能够向上追溯到的最年长的亲人就是张强。\n"
    "例子3.如果小明是张红的曾孙女，张红的祖母是王华，王华的父亲是王刚，除此以外提供的文本中没有更多关于亲属关系的信息，"
    "那么小明能够向上追溯到的最年长的亲人就是王刚。\n\n"
    "注意：\n"
    "1. 你不必纠结这个测试中的人名的性别关系，例如，一个通常被视为女性化的名字仍然可以是其他人的父亲，我们的重点是谁更年长。\n"
    "2. 忽略这个测试中的姓氏遗传问题，例如，李明仍然可能是王鹏的亲生父亲，我们只关注谁更年长，不必纠结孩子是否应该继承父亲或"
    "母亲的性别。\n"
    "3. 在回答的最后，将你的答案放在\\boxed{}中，例如：“所以«last_person»能向上追溯到的最年长的亲人就是\\boxed{（你的答案）}”\n\n",
}

# NeedleBench v2's kinship relations (needlebench_v2/atc.py): who is whose elder, in several phrasings.
RELATION_TEMPLATES = {
    "en": (
        "{A} is {B}'s {relationship}.",
        "{B}'s {relationship} is {A}.",
        "{A}, as {B}'s {relationship}, has a significant impact on {B}'s upbringing.",
        "{A} is not only {B}'s {relationship} but also {B}'s role model.",
        "During {B}'s upbringing, {A} was not only {B}'s {relationship}, but also {B}'s guardian.",
        "For {B}, {A} is not just a {relationship}, but also a friend.",
        "For {B}, {A} is more than just a {relationship}; {A} is a lifelong mentor of {B}.",
    ),
    "zh": (
        "{A}是{B}的{relationship}。",
        "{B}的{relationship}是{A}。",
        "{A}作为{B}的{relationship}，对{B}的成长有重要影响。",
        "{A}不仅是{B}的{relationship}，还是{B}的榜样。",
        "{A}在{B}的成长过程中，不仅仅是{B}的{relationship}，还是{B}的监护人。",
        "{A}对{B}来说，不只是一个{relationship}，还是一个朋友。",
    ),
}
RELATION_TERMS = {
    "en": (
        "father",
        "mother",
        "dad",
        "mom",
        "grandfather",
        "grandmother",
        "maternal grandmother",
        "maternal grandfather",
        "paternal grandfather",
        "paternal grandmother",
    ),
    "zh": ("父亲", "母亲", "爸爸", "妈妈", "爷爷", "奶奶", "姥姥", "姥爷", "外公", "外婆"),
}
REASONING_QUESTIONS = {
    "en": "Given the context described above, who is the eldest relative that '{name}' can trace back to in the "
    "context?",
    "zh": "在上面提供的文本中，'{name}'的能够向上追溯到的最年长的亲人是谁？",
}
_PLANE = {"single": (0.2, 0.05), "multi_retrieval": (0.3, 0.4), "multi_reasoning": (0.5, 0.3)}


def template_for(subset: str, language: str, last_person: str = "") -> str:
    """NeedleBench's prompt as a Sample template: {context} and {question} open, every other brace doubled."""
    text = PROMPTS[(subset, language)].replace("{", "{{").replace("}", "}}")
    text = text.replace("«last_person»", last_person.replace("{", "{{").replace("}", "}}"))
    return text.replace("«context»", "{context}").replace("«question»", "{question}")


def length_level(tokens: int) -> str:
    """A run length as NeedleBench names its settings: 4096 -> "4k"; a length that is no multiple of 1024
    keeps its number."""
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


# ---------------------------------------------------------------------------------------------------------
# Haystack text


_ZH_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]+[”’」』）)]*|[^。！？!?]+$")


def haystack_units(texts: tuple[str, ...], language: str) -> tuple[tuple[str, ...], ...]:
    """Each haystack record as sentence units that start with their whitespace: a paragraph's first sentence
    with a blank line (English) or a newline (Chinese), the others with a space (English) or nothing."""
    records = []
    for text in texts:
        units: list[str] = []
        for paragraph in (p for p in re.split(r"\n\s*\n" if language == "en" else r"\n+", text) if p.strip()):
            if language == "en":
                sentences = [s.strip() for s in split_sentences(" ".join(paragraph.split())) if s.strip()]
                units += ["\n\n" + sentences[0]] + [" " + s for s in sentences[1:]]
            else:
                sentences = [s.strip() for s in _ZH_SENTENCE.findall(paragraph.strip()) if s.strip()]
                units += ["\n" + sentences[0]] + sentences[1:]
        records.append(tuple(units))
    return tuple(records)


_COUNTS: dict[tuple[str, str], np.ndarray] = {}


class HaystackStream(UnitSource):
    """The haystack records' sentences in a seed's record order, cycling; counts are kept per tokenizer."""

    def __init__(self, records: tuple[tuple[str, ...], ...], order: list[int], key: str) -> None:
        self.texts = [unit for record in records for unit in record]
        starts = np.cumsum([0] + [len(record) for record in records])
        self.index = np.concatenate(
            [np.arange(starts[r], starts[r + 1]) for r in order] or [np.zeros(0, dtype=np.int64)]
        ).astype(np.int64)
        self.key = key

    def unit(self, index: int) -> str:
        return self.texts[int(self.index[index % len(self.index)])]

    def counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        known = _COUNTS.setdefault(
            (backend.tokenizer_fingerprint(), self.key), np.full(len(self.texts), -1, dtype=np.int64)
        )
        wanted = self.index[(start + np.arange(count)) % len(self.index)]
        missing = np.unique(wanted[known[wanted] < 0])
        if len(missing):
            texts = [self.texts[int(i)] for i in missing]
            specials = [s for s in backend.special_token_strings() if s]
            for text in texts:
                for special in specials:
                    if special in text:
                        raise UsageError(f"NeedleBench haystack text contains the special token {special!r}")
            known[missing] = count_many(backend, texts)
        return known[wanted]


# ---------------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class NeedleBenchData:
    needles: tuple[dict, ...]  # valid needles of the language asked
    haystack: tuple[tuple[str, ...], ...]  # records as sentence units
    names: tuple[str, ...]  # kinship names of the language ("" when not needed)
    rejected: tuple[tuple[str, str], ...]
    key: str  # identifies the haystack text, for token counts kept across samples


def _rows(data: str | None, name: str) -> list[tuple[str, dict | str]]:
    """(reference, record or reason) of one NeedleBench file, from the --data directory or the hub."""
    if data is None:
        rows = load_hub({"path": HUB_ID, "data_files": name, "split": "train"})
        return [(f"hub:{HUB_ID}/{name}#{i}", row) for i, row in enumerate(rows)]
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"--data {data}: NeedleBench reads a directory holding {NEEDLES_FILE}, {NAMES_FILE} and its "
            f"haystack files ({', '.join(HAYSTACK_FILES.values())})"
        )
    if not (folder / name).is_file():
        raise UsageError(f"--data {data} holds no {name}; NeedleBench needs it (hub: {HUB_ID})")
    if name.endswith(".json"):
        try:
            loaded = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"cannot read {folder / name}: not valid JSON ({exc})") from None
        return [(name, loaded if isinstance(loaded, dict) else "not a JSON object of names per language")]
    return list(read_records(folder / name))


@lru_cache(maxsize=4)
def _load(data: str | None, language: str, with_names: bool, stamp: str) -> NeedleBenchData:
    """Needles, haystack and names for one language (``stamp`` changes when the files do)."""
    full = LANGUAGES[language]
    rejected: list[tuple[str, str]] = []
    needles = []
    for ref, row in _rows(data, NEEDLES_FILE):
        reason = row if isinstance(row, str) else check_fields(row, NEEDLE_FIELDS)
        if reason is None and not isinstance(row.get("arg1", ""), str):
            reason = "field 'arg1' should be str"
        if reason is not None:
            rejected.append((ref, reason))
        elif row["language"] == full:
            needles.append(row)
    texts = []
    for ref, row in _rows(data, HAYSTACK_FILES[language]):
        reason = row if isinstance(row, str) else check_fields(row, {"text": str})
        if reason is not None:
            rejected.append((ref, reason))
        elif row["text"].strip():
            texts.append(row["text"])
    names: tuple[str, ...] = ()
    if with_names:
        for ref, row in _rows(data, NAMES_FILE)[:1]:
            listed = row.get(full) if isinstance(row, dict) else None
            if not isinstance(listed, str):
                raise UsageError(f"{ref}: no {full} names (a comma-separated string under {full!r})")
            names = tuple(dict.fromkeys(n.strip() for n in listed.split(",") if n.strip()))
    if not needles:
        raise UsageError(f"{NEEDLES_FILE} holds no usable {full} needle")
    if not texts:
        raise UsageError(f"{HAYSTACK_FILES[language]} holds no haystack text")
    key = stable_hash([HAYSTACK_FILES[language], stamp, len(texts)])
    return NeedleBenchData(
        tuple(needles), haystack_units(tuple(texts), language), names, tuple(rejected), key
    )


# ---------------------------------------------------------------------------------------------------------
# The task


@dataclass(frozen=True)
class NeedleBench(Task):
    """NeedleBench v2 at the run's lengths (and depths): ``needlebench:multi_reasoning(num_needles=3)``."""

    name: ClassVar[str] = "needlebench"
    description: ClassVar[str] = "NeedleBench v2: single/multi-needle retrieval and kinship reasoning needles"
    uses_depth: ClassVar[bool] = True
    breakdowns: ClassVar[tuple[str, ...]] = ("depth", "length_level")
    # Reads the run's --data (NeedleBench's needles and haystack texts) though it is fitted to the run's lengths.
    reads_data: ClassVar[bool] = True

    subset: str = "single"
    language: str = "en"
    num_needles: int | None = None  # multi_retrieval: 11 (one per depth); multi_reasoning: 2
    data: str | None = None
    max_new_tokens: int | None = None  # None: this subset's default (see OUTPUT_CAPS)

    def __post_init__(self) -> None:
        if self.subset not in SUBSETS:
            raise UsageError(f"unknown subset {self.subset!r} of needlebench; subsets: {', '.join(SUBSETS)}")
        if self.language not in LANGUAGES:
            raise UsageError(
                f"needlebench: language must be one of {', '.join(LANGUAGES)} (got {self.language!r})"
            )
        if self.num_needles is not None and (
            self.num_needles < 1 or (self.subset == "single" and self.num_needles != 1)
        ):
            raise UsageError(
                f"needlebench:{self.subset}: num_needles must be at least 1 (and 1 for single), "
                f"got {self.num_needles}"
            )
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"needlebench: max_new_tokens must be at least 1 (got {self.max_new_tokens})")

    @property
    def metric(self) -> str:  # type: ignore[override]
        return "needlebench_boxed" if self.subset == "multi_reasoning" else "needlebench_keywords"

    @property
    def diffusion(self) -> float:
        return _PLANE[self.subset][0]

    @property
    def scope(self) -> float:
        return _PLANE[self.subset][1]

    @property
    def output_cap(self) -> int:
        return self.max_new_tokens or OUTPUT_CAPS[self.subset]

    @property
    def needle_count(self) -> int:
        if self.subset == "single":
            return 1
        return self.num_needles or (len(RETRIEVAL_DEPTHS) if self.subset == "multi_retrieval" else 2)

    def label(self) -> str:
        """``needlebench:single(language=zh)``: as the command line writes it, without the data path."""
        defaults = type(self)()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in ("subset", "data") and getattr(self, f.name) != getattr(defaults, f.name)
        ]
        return f"{self.name}:{self.subset}" + (f"({','.join(changed)})" if changed else "")

    def with_data(self, data: str | None) -> NeedleBench:
        return dataclasses.replace(self, data=data) if self.data is None and data is not None else self

    def work(
        self, lengths: list[int], depths: list[float], seeds: list[int]
    ) -> list[tuple[int, float | None, int]]:
        """Multi-needle retrieval puts its needles at fixed depths; the others are run at every depth."""
        if self.subset == "multi_retrieval":
            return [(length, None, seed) for seed in seeds for length in lengths]
        return super().work(lengths, depths, seeds)

    # --- data -------------------------------------------------------------------------------------------

    def loaded(self) -> NeedleBenchData:
        return _load(self.data, self.language, self.subset == "multi_reasoning", self._stamp())

    def _stamp(self) -> str:
        if self.data is None:
            return "hub"
        folder = Path(self.data).expanduser()
        files = [folder / NEEDLES_FILE, folder / NAMES_FILE, folder / HAYSTACK_FILES[self.language]]
        return stable_hash([[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.is_file()])

    def rejected(self) -> list[tuple[str, str]]:
        return list(self.loaded().rejected)

    def cache_token(self) -> str:
        return self._stamp()

    def check(self, backend: Backend, length: int) -> None:
        if length <= self.output_cap:
            raise UsageError(
                f"{self.label()}: length {length} leaves no room for the prompt after the output budget "
                f"max_new_tokens={self.output_cap}"
            )
        data = self.loaded()
        if self.subset == "multi_reasoning" and len(data.names) < self.needle_count + 1:
            raise UsageError(
                f"{NAMES_FILE} lists {len(data.names)} {LANGUAGES[self.language]} names; a chain of "
                f"{self.needle_count} needles needs {self.needle_count + 1}"
            )

    # --- samples ----------------------------------------------------------------------------------------

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        data = self.loaded()
        rng = random.Random(
            int(stable_hash([self.name, self.subset, self.language, self.needle_count, seed]), 16)
        )
        order = list(range(len(data.haystack)))
        rng.shuffle(order)
        source = HaystackStream(data.haystack, order, data.key)
        start = depth if depth is not None else 0.5
        if self.subset == "single":
            needle = rng.choice(data.needles)
            needles = [Needle(f"\n{needle['needle']}\n", start)]
            question, answers = needle["retrieval_question"], (needle["arg2"],)
            template = template_for("single", self.language)
        elif self.subset == "multi_retrieval":
            chosen = self._distinct_needles(data, rng)
            step = RETRIEVAL_DEPTHS if self.needle_count == 11 else _even(self.needle_count)
            needles = [Needle(f"\n{n['needle']}\n", d) for n, d in zip(chosen, step, strict=True)]
            question, answers = self._joined_question(chosen), tuple(n["arg2"] for n in chosen)
            template = template_for("multi_retrieval", self.language)
        else:
            names = rng.sample(data.names, self.needle_count + 1)
            fragments = [
                rng.choice(RELATION_TEMPLATES[self.language]).format(
                    A=elder, B=younger, relationship=rng.choice(RELATION_TERMS[self.language])
                )
                for elder, younger in zip(names, names[1:], strict=False)
            ]
            rng.shuffle(fragments)
            needles = [
                Needle(f"\n{text}\n", min(1.0, start + i * CHAIN_STEP)) for i, text in enumerate(fragments)
            ]
            question = REASONING_QUESTIONS[self.language].format(name=names[-1])
            answers = (names[0],)
            template = template_for("multi_reasoning", self.language, last_person=names[-1])
        extra = {
            "subset": self.subset,
            "language": self.language,
            "needles": len(needles),
            "length_level": length_level(length),
            "depth": depth,
            "depth_percent": None if depth is None else round(depth * 100),
        }
        return self._fit(
            backend, length, depth, seed, template, Turn(question, answers), source, needles, extra
        )

    def _distinct_needles(self, data: NeedleBenchData, rng: random.Random) -> list[dict]:
        """Needles with distinct ``arg1`` and ``arg2`` whose question gives an answer format (NeedleBench joins
        the formats of all questions into one), in the seed's order."""
        pool = [n for n in data.needles if "'" in n["retrieval_question"]]
        rng.shuffle(pool)
        chosen, seen_first, seen_second = [], set(), set()
        for needle in pool:
            first, second = needle.get("arg1", ""), needle["arg2"]
            if first in seen_first or second in seen_second:
                continue
            seen_first.add(first)
            seen_second.add(second)
            chosen.append(needle)
            if len(chosen) == self.needle_count:
                return chosen
        raise UsageError(
            f"{NEEDLES_FILE} holds {len(chosen)} {LANGUAGES[self.language]} needles with distinct arg1/arg2 and "
            f"an answer format; needlebench:multi_retrieval needs {self.needle_count}"
        )

    def _joined_question(self, needles: list[dict]) -> str:
        """NeedleBench's multi-needle question: every question up to its question mark, joined by "、", then the
        answer formats joined the same way."""
        mark, stop = ("?", ".") if self.language == "en" else ("？", "。")
        questions = "、".join(n["retrieval_question"].split(mark)[0] + mark for n in needles)
        formats = "、".join(n["retrieval_question"].split("'")[1].split(stop)[0] for n in needles)
        if self.language == "en":
            return f"{questions}Please answer in the format of '{formats}'"
        return f"{questions}请按照'{formats}'的格式回答。"

    def _fit(
        self,
        backend: Backend,
        length: int,
        depth: float | None,
        seed: int,
        template: str,
        turn: Turn,
        source: UnitSource,
        needles: list[Needle],
        extra: dict[str, Any],
    ) -> Sample:
        """Fill the haystack so that the whole request (template, question, output cap) is ``length`` tokens."""
        cap = self.output_cap

        def render(context: str) -> str:
            user = template.format(context=context, question=turn.question)
            return backend.render([{"role": "user", "content": user}], turn.answer_prefix)

        fitted = fit_context(
            backend, lambda c: backend.count_tokens(render(c)), source, needles, length - cap, 0
        )
        meta: dict[str, Any] = {
            "target_length": length,
            "prompt_tokens": fitted.prompt_tokens,
            "realised_tokens": fitted.prompt_tokens + cap,
            "realised_chars": len(render(fitted.context)),
            "context_chars": len(fitted.context),
            "units": fitted.haystack_units,
            "needle_depths": list(fitted.needle_depths),
            "seed": seed,
            "params": self.params(),
            "diffusion": self.diffusion,
            "scope": self.scope,
            "tokenizer": backend.tokenizer_fingerprint(),
            "truncation": "none",
            **extra,
        }
        if not backend.capabilities.exact_tokens:
            meta["approximate_tokens"] = True
        # Every needle is asked for (one, each of several, or every link of the kinship chain): all are evidence.
        evidence = dict.fromkeys(n.text.strip() for n in needles if n.text.strip() in fitted.context)
        return Sample(
            id=self.sample_id(length, depth, seed),
            task=self.label(),
            context=fitted.context,
            turns=(turn,),
            template=template,
            max_new_tokens=cap,
            metadata=meta,
            evidence=tuple(evidence),
        )


def _even(count: int) -> tuple[float, ...]:
    """``count`` depths spread evenly from the start (0) to the end (1) of the context."""
    return (0.5,) if count == 1 else tuple(i / (count - 1) for i in range(count))

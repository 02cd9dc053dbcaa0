"""LV-Eval (Yuan et al. 2024): eleven bilingual QA datasets, each at five length levels (16k to 256k words).

Prompts and output caps are LV-Eval's (config.py), the model's own chat format is applied (its prediction.py
wraps each prompt in the model's chat format), and an over-long prompt loses its middle, as LV-Eval truncates
it. Scores are LV-Eval's: keyword-recall-gated F1 on most datasets, plain F1 on factrecall and a blacklisted
ROUGE-L on dureader, all against the first gold answer (the lveval scorers). ``lveval:hotpotwikiqa_mixup``
reads every level found; ``lveval:hotpotwikiqa_mixup(level=16k)`` (or ``lveval:hotpotwikiqa_mixup_16k``)
one; ``lveval(level=16k)`` every dataset at one level. Reports break scores down by ``length_level``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.tasks.benchmarks.base import Benchmark, Record

LEVELS = ("16k", "32k", "64k", "128k", "256k")

_EN_ONE = (
    "Please answer the following question based on the given passages. Questions and answers are only "
    "relevant to one passage. Only give me the answer and do not output any other explanation and evidence."
    "\n\nArticle: {context}\n\nPlease answer the following question based on the above passages. Questions "
    "and answers are only relevant to one passage. Only give me the answer and do not output any other "
    "explanation and evidence.\n\nQuestion: {question}\nAnswer:"
)
_ZH_ONE = (
    "请根据下面给定的文章回答问题，问题和答案只与其中一篇文章有关。\n\n文章：{context}\n\n"
    "现在请基于上述文章回答下面的问题，问题和答案只与其中一篇文章有关。\n\n问题：{question}\n回答："
)
TEMPLATE = {
    "hotpotwikiqa_mixup": "Answer the question based on the given passages. Questions and answers are only "
    "relevant to some passages. Only give me the answer and do not output any other explanation and evidence."
    "\n\nArticle: {context}\n\nPlease answer the following question based on the above passages. Questions "
    "and answers are only relevant to some passages. Only give me the answer and do not output any other "
    "explanation and evidence.\n\nQuestion: {question}\nAnswer:",
    "loogle_SD_mixup": _EN_ONE,
    "loogle_CR_mixup": _EN_ONE,
    "loogle_MIR_mixup": _EN_ONE,
    "multifieldqa_en_mixup": _EN_ONE,
    "multifieldqa_zh_mixup": "请阅读以下文章并用中文回答问题，问题和答案只与其中一篇文章有关。只需要直接给出问题的答案，"
    "不要输出其他任何解释和证据。\n\n文章：{context}\n\n请基于上面的文章回答下面的问题，问题和答案只与其中一篇文章有关。"
    "只需要直接给出问题的答案，不要输出其他任何解释和证据。\n\n问题：{question}\n回答：",
    "factrecall_en": "Please answer the following questions based on the given article.\n\nArticle: {context}"
    "\n\nPlease answer the following questions based on the above article.\n\nQuestion: {question}\nAnswer:",
    "factrecall_zh": "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n现在请基于上述文章回答下面的问题。\n\n"
    "问题：{question}\n回答：",
    "cmrc_mixup": _ZH_ONE,
    "lic_mixup": "请根据下面给定的文章回答问题，问题和答案只与其中一篇文章有关。\n\n文章：{context}\n\n"
    "请现在基于上述文章回答下面的问题，问题和答案只与其中一篇文章有关。\n\n问题：{question}\n回答：",
    "dureader_mixup": _ZH_ONE,
}
METRIC = {
    "hotpotwikiqa_mixup": "lveval_gated_f1",
    "loogle_SD_mixup": "lveval_gated_f1",
    "loogle_CR_mixup": "lveval_gated_f1",
    "loogle_MIR_mixup": "lveval_gated_f1",
    "multifieldqa_en_mixup": "lveval_gated_f1",
    "multifieldqa_zh_mixup": "lveval_gated_f1_zh",
    "factrecall_en": "lveval_f1",
    "factrecall_zh": "lveval_f1_zh",
    "cmrc_mixup": "lveval_gated_f1_zh",
    "lic_mixup": "lveval_gated_f1_zh",
    "dureader_mixup": "lveval_rouge_zh",
}
MAX_NEW_TOKENS = {name: 16 if name.startswith("factrecall") else 64 for name in METRIC}
# (diffusion, scope): every dataset mixes the supporting documents among distractors, and most insert
# confusing facts that look like the answer.
PLANE = {
    "hotpotwikiqa_mixup": (0.8, 0.4),  # two hops, both among look-alike passages
    "loogle_SD_mixup": (0.6, 0.2),
    "loogle_CR_mixup": (0.7, 0.5),
    "loogle_MIR_mixup": (0.7, 0.5),
    "multifieldqa_en_mixup": (0.7, 0.3),
    "multifieldqa_zh_mixup": (0.7, 0.3),
    "factrecall_en": (0.5, 0.05),  # one needle, with confusing near-copies of it
    "factrecall_zh": (0.5, 0.05),
    "cmrc_mixup": (0.6, 0.2),
    "lic_mixup": (0.7, 0.4),
    "dureader_mixup": (0.7, 0.4),
}
_LEVELLED = re.compile(r"^(?P<name>.+)_(?P<level>16k|32k|64k|128k|256k)$")


@dataclass(frozen=True)
class LVEval(Benchmark):
    name: ClassVar[str] = "lveval"
    description: ClassVar[str] = (
        "LV-Eval: single- and multi-hop QA in English and Chinese among distractors and confusing facts, at "
        "five length levels from 16k to 256k words"
    )
    hub_id: ClassVar[str] = "Infinigence/LVEval"
    subsets: ClassVar[tuple[str, ...]] = tuple(METRIC)
    fields: ClassVar[dict[str, Any]] = {"input": str, "context": str, "answers": list[str]}
    breakdowns: ClassVar[tuple[str, ...]] = ("length_level",)

    level: str = ""  # one of LEVELS; "" reads every level found

    def __post_init__(self) -> None:
        subset, level = self.subset, self.level.lower()
        # A file given alone says which dataset and level it holds by its name: hotpotwikiqa_mixup_16k.jsonl.
        if not subset and self.data is not None and Path(self.data).expanduser().is_file():
            subset = Path(self.data).name.split(".")[0]
            if _LEVELLED.match(subset) is None and subset not in self.subsets:
                raise UsageError(
                    f"cannot tell which LV-Eval dataset {self.data} holds; name it, e.g. "
                    f"lveval:hotpotwikiqa_mixup(level=16k) (datasets: {', '.join(self.subsets)})"
                )
        levelled = _LEVELLED.match(subset)
        if levelled is not None and levelled["name"] in self.subsets:  # hotpotwikiqa_mixup_16k
            if level and level != levelled["level"]:
                raise UsageError(f"lveval:{subset} is level {levelled['level']}, not level={level}")
            subset, level = levelled["name"], levelled["level"]
        if level and level not in LEVELS:
            raise UsageError(f"unknown LV-Eval length level {self.level!r}; levels: {', '.join(LEVELS)}")
        object.__setattr__(self, "subset", subset)
        object.__setattr__(self, "level", level)
        super().__post_init__()

    def data_files(self) -> list[str]:
        stem = f"{self.subset}_{self.level}"
        return [f"{stem}.jsonl", f"{self.subset}/{stem}.jsonl", f"data/{stem}.jsonl", f"{stem}.json"]

    def hub_args(self) -> dict[str, Any]:
        # The hub's loading script is not run (remote code never is): each dataset is a zip of its five
        # level files, and the one level's file is read from it as plain JSON.
        stem = f"{self.subset}_{self.level}"
        archive = f"https://huggingface.co/datasets/{self.hub_id}/resolve/main/{self.subset}.zip"
        return {
            "path": "json",
            "data_files": {"test": f"zip://{self.subset}/{stem}.jsonl::{archive}"},
            "split": "test",
        }

    def validate(self, data: dict) -> str | None:
        return None if data["answers"] else "no gold answer"

    def read_subsets(self) -> list[str]:
        """Every (dataset, level) pair is one file, or one hub configuration: "hotpotwikiqa_mixup_16k". The
        base reads each as a subset, and this class takes such a name apart into subset and level."""
        names = [self.subset] if self.subset else list(self.subsets)
        levels = [self.level] if self.level else list(LEVELS)
        return [f"{name}_{level}" for name in names for level in levels]

    subset_metrics = METRIC
    subset_planes = PLANE

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        dataset, level = self._where(record)
        data = record.data
        keywords = data.get("answer_keywords") or ""
        diffusion, scope = PLANE[dataset]
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"],
            turns=(Turn(question=data["input"], answers=tuple(data["answers"])),),
            template=TEMPLATE[dataset],
            max_new_tokens=MAX_NEW_TOKENS[dataset],
            metadata={
                "subset": dataset,
                "length_level": level,
                "metric": METRIC[dataset],
                "answer_keywords": keywords if isinstance(keywords, str | list) else str(keywords),
                "language": "zh" if METRIC[dataset].endswith("_zh") else "en",
                "diffusion": diffusion,
                "scope": scope,
            },
        )

    def _where(self, record: Record) -> tuple[str, str]:
        """The record's dataset and level: from the file (or hub configuration) it was read for."""
        levelled = _LEVELLED.match(record.subset)
        if levelled is not None:
            return levelled["name"], levelled["level"]
        return self.subset, self.level

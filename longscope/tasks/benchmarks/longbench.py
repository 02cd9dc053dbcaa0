"""LongBench (v1) and LongBench-E: 21 bilingual datasets in LongBench's own prompts, output caps and metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.tasks.benchmarks.base import Benchmark, Record

# The prompts, output caps and metrics below are LongBench's (THUDM/LongBench, LongBench/config/
# dataset2prompt.json, dataset2maxlen.json and eval.py's dataset2metric), as published, typos included
# ("asconcisely" in narrativeqa), so prompts match the published numbers. Its {input} is our {question}.
PROMPTS = {
    "narrativeqa": (
        "You are given a story, which can be either a novel or a movie script, and a question. Answer the "
        "question asconcisely as you can, using a single phrase if possible. Do not provide any explanation."
        "\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a "
        "single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:"
    ),
    "qasper": (
        "You are given a scientific article and a question. Answer the question as concisely as you can, "
        "using a single phrase or sentence if possible. If the question cannot be answered based on the "
        'information in the article, write "unanswerable". If the question is a yes/no question, answer '
        '"yes", "no", or "unanswerable". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the '
        "question based on the above article as concisely as you can, using a single phrase or sentence if "
        "possible. If the question cannot be answered based on the information in the article, write "
        '"unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not '
        "provide any explanation.\n\nQuestion: {input}\n\nAnswer:"
    ),
    "multifieldqa_en": (
        "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based "
        "on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\n"
        "Answer:"
    ),
    "multifieldqa_zh": (
        "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，"
        "不要输出任何其他字词。\n\n问题：{input}\n回答："
    ),
    "hotpotqa": (
        "Answer the question based on the given passages. Only give me the answer and do not output any other "
        "words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given "
        "passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:"
    ),
    "dureader": "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：",
    "gov_report": (
        "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n"
        "{context}\n\nNow, write a one-page summary of the report.\n\nSummary:"
    ),
    "qmsum": (
        "You are given a meeting transcript and a query containing a question or instruction. Answer the query "
        "in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above "
        "meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:"
    ),
    "multi_news": (
        "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\n"
        "Now, write a one-page summary of all the news.\n\nSummary:"
    ),
    "vcsum": "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：",
    "trec": "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}",
    "triviaqa": (
        "Answer the question based on the given passage. Only give me the answer and do not output any other "
        "words. The following are some examples.\n\n{context}\n\n{input}"
    ),
    "samsum": "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}",
    "lsht": "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}",
    "passage_count": (
        "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please "
        "carefully read these paragraphs and determine how many unique paragraphs there are after removing "
        "duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\n"
        "Please enter the final count of unique paragraphs after removing duplicates. The output format should "
        "only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: "
    ),
    "passage_retrieval_en": (
        "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the "
        "abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number "
        'of the paragraph that the abstract is from. The answer format must be like "Paragraph 1", '
        '"Paragraph 2", etc.\n\nThe answer is: '
    ),
    "passage_retrieval_zh": (
        "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要"
        '\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是"段落1"，"段落2"等格式\n\n答案是：'
    ),
    "lcc": "Please complete the code given below. \n{context}Next line of code:\n",
    "repobench-p": "Please complete the code given below. \n{context}{input}Next line of code:\n",
}
PROMPTS["2wikimqa"] = PROMPTS["musique"] = PROMPTS["hotpotqa"]

MAX_NEW_TOKENS = {
    "narrativeqa": 128, "qasper": 128, "multifieldqa_en": 64, "multifieldqa_zh": 64, "hotpotqa": 32,
    "2wikimqa": 32, "musique": 32, "dureader": 128, "gov_report": 512, "qmsum": 512, "multi_news": 512,
    "vcsum": 512, "trec": 64, "triviaqa": 32, "samsum": 128, "lsht": 64, "passage_count": 32,
    "passage_retrieval_en": 32, "passage_retrieval_zh": 32, "lcc": 64, "repobench-p": 64,
}  # fmt: skip

METRICS = {
    "narrativeqa": "qa_f1", "qasper": "qa_f1", "multifieldqa_en": "qa_f1", "multifieldqa_zh": "qa_f1_zh",
    "hotpotqa": "qa_f1", "2wikimqa": "qa_f1", "musique": "qa_f1", "dureader": "longbench_rouge_l_zh",
    "gov_report": "longbench_rouge_l", "qmsum": "longbench_rouge_l", "multi_news": "longbench_rouge_l",
    "vcsum": "longbench_rouge_l_zh", "trec": "classification", "triviaqa": "qa_f1",
    "samsum": "longbench_rouge_l", "lsht": "classification",
    "passage_count": "count", "passage_retrieval_en": "retrieval", "passage_retrieval_zh": "retrieval_zh",
    "lcc": "code_sim", "repobench-p": "code_sim",
}  # fmt: skip

# pred.py feeds these as raw text ("chat models are better off without build prompts on these tasks")...
NO_CHAT = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})
# ...and eval.py scores only the first line of the prediction on these (scorers *_first_line).
FIRST_LINE = frozenset({"trec", "triviaqa", "samsum", "lsht"})
# pred.py ends samsum's generation at a newline ("prevent illegal output on samsum": models otherwise go on
# writing the next "Dialogue:"), by adding the newline token to the end-of-sequence ids.
STOP = {"samsum": ("\n",)}

# The version of what LongBench samples carry besides the record (metric names, stop strings): part of the
# sample cache key, so that samples cached before a change are built again rather than scored by old names.
SAMPLE_FORMAT = 2

DEPARTURES = (
    "Quirks of LongBench's code are kept: trec's and lsht's class loop skips the class after each one it drops "
    "('Type: Other location' with classes Other, location, Other location scores 0.5); a summary whose "
    "sentence pair is too long for the rouge package's recursion (about 990 words with no '.') scores 0; lcc "
    "and repobench-p pass over any line with a backtick, '#' or '//' anywhere in it, and a blank line counts.",
    "samsum's newline stop is a stop string: a reply is cut at its first newline. LongBench's pred.py stops on "
    "the newline token but also forbids it as the first token (min_new_tokens=1), so a reply that would open "
    "with a newline ends empty here (and scores 0) where LongBench makes the model write something first.",
    "Dataset scores are means over the replies that came back; a failed request is counted apart (its row "
    "says why), where LongBench's pred.py has no failures to count. The printed score is round(100 x mean, 2) "
    "as eval.py prints it; LongBench's eval.py prints no average, and the average shown is the mean of the "
    "printed dataset scores, rounded to 2 decimals.",
    "lcc and repobench-p follow LongBench's requirements: fuzzywuzzy without python-Levenshtein, so difflib's "
    "ratio. A LongBench environment that has python-Levenshtein installed scores with an edit-distance ratio "
    "instead, which differs on some lines; such published numbers are not reproduced to the digit.",
    "A passage_retrieval gold without its label ('Paragraph N', '段落N') makes LongBench's eval.py fail; such "
    "a gold scores 0 here with the reason in the row's details (the published files have none).",
    "eval.py scores every record of a file with the class list of the file's last record; each record uses "
    "its own here (in the published trec and lsht files all records share one list).",
)

# The paper's six task categories, for a breakdown beside the per-dataset one.
CATEGORIES = {
    "single-doc QA": ("narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh"),
    "multi-doc QA": ("hotpotqa", "2wikimqa", "musique", "dureader"),
    "summarization": ("gov_report", "qmsum", "multi_news", "vcsum"),
    "few-shot learning": ("trec", "triviaqa", "samsum", "lsht"),
    "synthetic": ("passage_count", "passage_retrieval_en", "passage_retrieval_zh"),
    "code completion": ("lcc", "repobench-p"),
}
CATEGORY = {dataset: category for category, members in CATEGORIES.items() for dataset in members}

# Places on the difficulty plane (longscope's own judgement, not LongBench's): (diffusion, scope).
PLANE = {
    "single-doc QA": (0.5, 0.3),
    "multi-doc QA": (0.6, 0.5),
    "summarization": (0.3, 0.9),
    "few-shot learning": (0.2, 0.3),
    "synthetic": (0.6, 0.6),
    "code completion": (0.5, 0.4),
}
PLANE_OVERRIDES = {"qmsum": (0.5, 0.6), "passage_count": (0.5, 1.0), "passage_retrieval_en": (0.6, 0.2)}
PLANE_OVERRIDES["passage_retrieval_zh"] = PLANE_OVERRIDES["passage_retrieval_en"]

DATASETS = tuple(PROMPTS)
DATA_ZIP = "https://huggingface.co/datasets/THUDM/LongBench/resolve/main/data.zip"
# LongBench-E: the datasets resampled evenly over 0-4k, 4-8k and 8k+ (pred.py's --e list).
E_DATASETS = (
    "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec", "triviaqa",
    "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p",
)  # fmt: skip
V1_ORDER = (
    "narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique",
    "dureader", "gov_report", "qmsum", "multi_news", "vcsum", "trec", "triviaqa", "samsum", "lsht",
    "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc", "repobench-p",
)  # fmt: skip


def length_range(length: int) -> str:
    """LongBench-E's interval of a record's ``length`` (words, or characters for Chinese): eval.py's bins."""
    return "0-4k" if length < 4000 else "4-8k" if length < 8000 else "8k+"


def plane(dataset: str) -> tuple[float, float]:
    return PLANE_OVERRIDES.get(dataset) or PLANE[CATEGORY[dataset]]


def template_for(dataset: str) -> str:
    """LongBench's prompt as a Sample template: {input} becomes {question}, any other brace is literal."""
    text = PROMPTS[dataset].replace("{", "{{").replace("}", "}}")
    return text.replace("{{context}}", "{context}").replace("{{input}}", "{question}")


def split_dataset(name: str) -> tuple[str, bool]:
    """ "hotpotqa_e" -> ("hotpotqa", True): the v1 dataset and whether it is the LongBench-E version."""
    if name.endswith("_e") and name[:-2] in E_DATASETS:
        return name[:-2], True
    return name, False


@dataclass(frozen=True)
class LongBench(Benchmark):
    """LongBench: write ``longbench`` for all 21 datasets, ``longbench:hotpotqa`` for one, ``longbench:hotpotqa_e``
    for its LongBench-E version, ``longbench(e=true)`` for all 13 of LongBench-E.

    Scored as LongBench's eval.py and metrics.py score, quirks included: the ``rouge`` package's ROUGE-L for
    the summaries (case and punctuation kept, 0 where the package raises), Chinese F1 with LongBench's own
    punctuation list, code similarity on the first line with no backtick, "#" or "//" in it, class names with
    the official loop's skip, numbers compared as text ("07" is not 7), the best over the gold answers."""

    name: ClassVar[str] = "longbench"
    description: ClassVar[str] = (
        "LongBench v1 (21 datasets, en/zh) and LongBench-E, in LongBench's prompts, output caps and metrics"
    )
    breakdowns: ClassVar[tuple[str, ...]] = ("dataset", "category", "length_range")
    hub_id: ClassVar[str] = "THUDM/LongBench"
    subsets: ClassVar[tuple[str, ...]] = V1_ORDER + tuple(f"{d}_e" for d in E_DATASETS)
    default_subsets: ClassVar[tuple[str, ...]] = V1_ORDER
    fields: ClassVar[dict[str, Any]] = {
        "input": str,
        "context": str,
        "answers": list[str],
        "length": int,
        "dataset": str,
        "language": str,
        "all_classes": list[str] | None,
        "_id": str,
    }
    truncation: ClassVar[str] = "middle"  # pred.py: "truncate in the middle", instructions sit at both ends
    departures: ClassVar[tuple[str, ...]] = DEPARTURES

    e: bool = False  # with no subset named: read the 13 LongBench-E datasets instead of the 21 of v1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.e and self.subset and not split_dataset(self.subset)[1]:
            raise UsageError(
                f"longbench: e=true reads LongBench-E; name its subset with _e (e.g. longbench:{self.subset}_e) "
                "or drop the subset"
            )

    def cache_token(self) -> str:
        return f"{super().cache_token()}|samples-v{SAMPLE_FORMAT}"

    def read_subsets(self) -> list[str]:
        if self.e and not self.subset:
            return [f"{d}_e" for d in E_DATASETS]
        return super().read_subsets()

    def data_files(self) -> list[str]:
        # The published data.zip unpacks to data/<config>.jsonl.
        name = self.subset
        return [
            f"{name}.jsonl",
            f"data/{name}.jsonl",
            f"{name}.json",
            f"{name}.parquet",
            f"data/{name}.parquet",
        ]

    def hub_args(self) -> dict[str, Any]:
        # THUDM/LongBench is read on the hub by a loading script, which `datasets` no longer runs (and remote
        # code is never run here): read its data.zip member with the plain JSON builder instead.
        member = f"zip://data/{self.subset}.jsonl::{DATA_ZIP}"
        return {"path": "json", "data_files": {"test": member}, "split": "test"}

    def validate(self, data: dict) -> str | None:
        dataset, _ = split_dataset(data["dataset"])
        if dataset not in PROMPTS:
            return f"dataset {data['dataset']!r} is not a LongBench dataset"
        if not data["answers"]:
            return "no gold answer"
        if METRICS[dataset] == "classification" and not data["all_classes"]:
            return f"{dataset} is scored by class, and all_classes is empty"
        return None

    def dataset_of(self, record: Record) -> tuple[str, bool]:
        """The record's v1 dataset and whether it is from LongBench-E: by the subset it was read for, else by
        its own "dataset" field or its file name (hotpotqa_e.jsonl)."""
        stated, e = split_dataset(record.subset or record.data["dataset"])
        if not record.subset and not e:
            stem = Path(record.ref.rsplit(":", 1)[0].rsplit("#", 1)[0]).stem
            e = split_dataset(stem)[1] and split_dataset(stem)[0] == stated
        return stated, e

    @property
    def metric(self) -> str:
        """The dataset's scorer when one subset is named; ``per_record`` (each sample names its own) otherwise."""
        if not self.subset:
            return "per_record"
        return self.dataset_metric(split_dataset(self.subset)[0])

    @staticmethod
    def dataset_metric(dataset: str) -> str:
        return METRICS[dataset] + ("_first_line" if dataset in FIRST_LINE else "")

    def _datasets(self) -> list[str]:
        return [split_dataset(subset)[0] for subset in self.read_subsets() if subset] or list(V1_ORDER)

    @property
    def diffusion(self) -> float:
        datasets = self._datasets()
        return round(sum(plane(d)[0] for d in datasets) / len(datasets), 3)

    @property
    def scope(self) -> float:
        datasets = self._datasets()
        return round(sum(plane(d)[1] for d in datasets) / len(datasets), 3)

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        data = record.data
        dataset, e = self.dataset_of(record)
        diffusion, scope = plane(dataset)
        metadata: dict[str, Any] = {
            "dataset": f"{dataset}_e" if e else dataset,
            "category": CATEGORY[dataset],
            "language": data["language"],
            "length": data["length"],
            "all_classes": data["all_classes"],
            "metric": self.dataset_metric(dataset),
            "first_line": dataset in FIRST_LINE,
            "diffusion": diffusion,
            "scope": scope,
        }
        if e:
            metadata["length_range"] = length_range(data["length"])
        if dataset in STOP:
            metadata["stop"] = list(STOP[dataset])
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"],
            turns=(Turn(question=data["input"], answers=tuple(data["answers"])),),
            template=template_for(dataset),
            max_new_tokens=MAX_NEW_TOKENS[dataset],
            chat=dataset not in NO_CHAT,
            metadata=metadata,
            evidence=answered_passages(data["context"], data["answers"])
            if dataset.startswith("passage_retrieval")
            else (),
        )


# A passage_retrieval context is "Paragraph 1: ...\n\nParagraph 2: ..." (zh: "段落1：..."); each label opens a
# line.
_PASSAGE_LABEL = re.compile(r"(?:^|\n)(Paragraph \d+|段落\d+)\s*[:：]")


def answered_passages(context: str, answers: list[str]) -> tuple[str, ...]:
    """The passages a passage_retrieval record's answers name ("Paragraph 12", "段落12"), each with its label, as
    they stand in the context: the evidence the answer needs. An answer naming no passage of the context gives
    none."""
    labels = list(_PASSAGE_LABEL.finditer(context))
    ends = [label.start() for label in labels[1:]] + [len(context)]
    passages = {
        match.group(1): context[match.start(1) : end] for match, end in zip(labels, ends, strict=True)
    }
    named = [passages[answer.strip()].strip() for answer in answers if answer.strip() in passages]
    return tuple(dict.fromkeys(text for text in named if text))

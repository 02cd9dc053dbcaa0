"""HELMET (Yen et al., 2025): synthetic recall, RAG, passage re-ranking, many-shot ICL, generation with citations,
long-document QA and summarisation, from HELMET's published files in its own prompts, output caps and metrics.

Data (local only): HELMET's ``data.tar.gz`` (hub: princeton-nlp/HELMET) unpacked, given as --data (the ``data``
folder or the folder above it): ``json_kv/``, ``ruler/``, ``kilt/``, ``msmarco/``, ``alce/``; for the citation
subsets also HELMET's ``prompts/asqa_revised.json`` and ``prompts/qampari_revised.json`` (from its repository);
for the InfiniteBench subsets InfiniteBench's ``longbook_qa_eng.jsonl``, ``longbook_choice_eng.jsonl`` and
``longbook_sum_eng.jsonl`` (in ``infbench/`` or beside the rest); for many-shot ICL the hub datasets' rows saved
as ``icl/trec_coarse/test.jsonl`` and ``train.jsonl`` (``trec_fine``, ``banking77``, ``clinic150``; the NLU
set's one split as ``icl/nlu/train.jsonl``, its test tenth held out as HELMET holds it out); NarrativeQA's and
Multi-LexSum's hub rows as ``narrativeqa/test.jsonl`` and ``multi_lexsum/validation.jsonl``, each with its
``train.jsonl`` for demonstrations. ``size`` (4k ... 128k, default 128k) picks the
files HELMET's configs read at that input length (json_kv's k, KILT's and MS MARCO's number of passages, ALCE's
number of documents); ``helmet`` alone reads every dataset a rule scores, the judged ones
(``helmet:narrativeqa``, ``helmet:infbench_sum``, ``helmet:multi_lexsum``) run when named. ``shots`` demonstrations (HELMET's 2 by default) are drawn as HELMET draws them.
``sample`` picks the records run: HELMET's draw of 100 per dataset (500 for ICL), each loader's own way
(longscope.tasks.benchmarks._helmet_draw), by default; ``sample=N`` for N drawn alike, ``sample=all`` for all.

Scoring follows HELMET's data.py, utils.py and eval_alce.py: a completion prompt's reply is scored with the
answer prefix put back in front (eval.py does so), the better of the whole reply and its parsed answer; RAG and
JSON KV by normalised substring match, RULER by the share of values named, MS MARCO by NDCG@10 of the parsed
ranking, ICL by exact match of the label parsed after "label:", ASQA by STR-EM, QAMPARI by recall of the top five,
InfiniteBench QA by ROUGE-L F1 and its choices by exact match. Its model-judged metrics (NarrativeQA's
gpt-4-score, the summaries' GPT-4o F1, citation recall and precision by an NLI model) need a judge: NarrativeQA and
the summaries are graded by the run's --judge (skipped with the reason without one), and citation recall and
precision are computed by the judge as an entailment judge (longscope.judging.entailment), else left out of the
row with that reason. Per-category averages are HELMET's
(collect_results.py): each category the mean of its datasets' scores, the overall mean the mean of categories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.tasks.benchmarks._helmet_draw import (
    ICL_TEST_SAMPLES,
    SEED,
    TEST_SAMPLES,
    balance_labels,
    draw_balanced,
    draw_by_key,
    draw_shuffled,
    draw_shuffled_if_over,
    shuffled,
)
from longscope.tasks.benchmarks.base import Benchmark, Record, read_records

SIZES = ("4k", "8k", "16k", "32k", "64k", "128k")
LENGTHS = dict(zip(SIZES, (4096, 8192, 16384, 32768, 65536, 131072), strict=True))
# What HELMET's configs read at each size (scripts/generate_configs.py).
KV_PAIRS = dict(zip(SIZES, (50, 105, 220, 440, 900, 1800), strict=True))
KILT_PASSAGES = dict(zip(SIZES, (20, 50, 105, 220, 440, 1000), strict=True))
MSMARCO_PASSAGES = dict(zip(SIZES, (14, 50, 130, 285, 600, 1000), strict=True))
ALCE_DOCS = dict(zip(SIZES, (8, 30, 75, 165, 345, 700), strict=True))
# Many-shot ICL: (label field, number of labels, demonstrations per size), as load_icl and the configs set them.
ICL = {
    "icl_trec_coarse": ("coarse_label", 6, (200, 400, 800, 1600, 3300, 6600)),
    "icl_trec_fine": ("fine_label", 50, (200, 400, 800, 1600, 3200, 6400)),
    "icl_banking77": ("label", 77, (180, 360, 720, 1450, 2900, 5900)),
    "icl_clinic150": ("intent", 151, (220, 440, 880, 1750, 3525, 7050)),
    "icl_nlu": ("label", 68, (250, 510, 1020, 2040, 4080, 8296)),
}
# The NLU set has one split on the hub; load_icl holds out a tenth as its test set (train_test_split, seed 42).
NLU_TEST_SHARE = 0.1
ICL_SEED = 42  # HELMET's --seed, mixed into each test text's demonstration seed

CATEGORIES = {
    "Recall": ("json_kv", "ruler_niah_mk_2", "ruler_niah_mk_3", "ruler_niah_mv"),
    "RAG": ("kilt_nq", "kilt_triviaqa", "kilt_hotpotqa", "kilt_popqa"),
    "Re-rank": ("msmarco_rerank_psg",),
    "ICL": ("icl_trec_coarse", "icl_trec_fine", "icl_banking77", "icl_clinic150", "icl_nlu"),
    "Cite": ("alce_asqa", "alce_qampari"),
    "LongQA": ("narrativeqa", "infbench_qa", "infbench_choice"),
    "Summ": ("infbench_sum", "multi_lexsum"),
}
CATEGORY = {dataset: category for category, members in CATEGORIES.items() for dataset in members}
DATASETS = tuple(CATEGORY)
# HELMET grades these with GPT-4o (NarrativeQA's gpt-4-score, the summaries' key-point F1): here the run's --judge.
JUDGED = frozenset({"narrativeqa", "infbench_sum", "multi_lexsum"})

METRICS = {
    "json_kv": "helmet_substring_em", "ruler_niah_mk_2": "helmet_ruler_recall",
    "ruler_niah_mk_3": "helmet_ruler_recall", "ruler_niah_mv": "helmet_ruler_recall",
    "kilt_nq": "helmet_substring_em", "kilt_triviaqa": "helmet_substring_em",
    "kilt_hotpotqa": "helmet_substring_em", "kilt_popqa": "helmet_substring_em",
    "msmarco_rerank_psg": "ndcg_at_10", "icl_trec_coarse": "helmet_icl_em", "icl_trec_fine": "helmet_icl_em",
    "icl_banking77": "helmet_icl_em", "icl_clinic150": "helmet_icl_em", "alce_asqa": "alce_str_em", "alce_qampari": "alce_qampari_rec_top5",
    "infbench_qa": "helmet_rouge_l_f1", "infbench_choice": "helmet_choice_em", "infbench_sum": "judge",
    "icl_nlu": "helmet_icl_em", "narrativeqa": "judge", "multi_lexsum": "judge",
}  # fmt: skip
OUTPUT_CAPS = {
    "json_kv": 100, "ruler_niah_mk_2": 50, "ruler_niah_mk_3": 100, "ruler_niah_mv": 50, "kilt_nq": 20,
    "kilt_triviaqa": 20, "kilt_hotpotqa": 20, "kilt_popqa": 20, "msmarco_rerank_psg": 200, "icl_trec_coarse": 20,
    "icl_trec_fine": 20, "icl_banking77": 20, "icl_clinic150": 20, "alce_asqa": 300,
    "alce_qampari": 300, "infbench_qa": 10, "infbench_choice": 10, "infbench_sum": 1200, "icl_nlu": 20,
    "narrativeqa": 100, "multi_lexsum": 400,
}  # fmt: skip
# HELMET's configs: recall, RAG and re-ranking as completions (no chat template), the rest through it.
CHAT = frozenset(
    {
        "alce_asqa",
        "alce_qampari",
        "infbench_qa",
        "infbench_choice",
        "infbench_sum",
        "narrativeqa",
        "multi_lexsum",
    }
)
STOP_AT_NEWLINE = frozenset(
    {"kilt_nq", "kilt_triviaqa", "kilt_hotpotqa", "kilt_popqa", "msmarco_rerank_psg", *ICL}
)
POPQA_THRESHOLD = 3.0  # kilt_popqa_3: questions about entities with log10(popularity) below 3

# The prompts, as data.py writes them (typos included: "relelvant" is HELMET's).
QA_PROMPT = (
    "Use the given documents to write a concise and short answer to the question. Write your answer in the "
    "following format:\nAnswer: [answer]\n\n{demos}{context}\n\nQuestion: {question}"
)
KV_PROMPT = (
    "{context}\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n{demos}Key: "
    "{question}"
)
NIAH_PROMPT = (
    "A special magic {type_needle_v} is hidden within the following text. Make sure to memorize it. I will quiz "
    "you about the {type_needle_v} afterwards.\n{context}\nWhat is the special magic {type_needle_v} for {query} "
    "mentioned in the provided text?"
)
NIAH_MV_PROMPT = (
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will "
    "quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} "
    "for {query} mentioned in the provided text?"
)
RERANK_PROMPT = (
    "You are provided with a list of documents, each indicated by their ID. Rank each document based on their "
    "relevance to the question in descending order from most relelvant to least relevant texts. Include all "
    "documents in the rankings. Write your answer using the unique IDs, with the following format:\nRanking: "
    "ID3 > ID1 > ID2\n\n{demos}{context}\n\nQuery: {question}"
)
ALCE_PROMPT = "{demo_text}{instruction}\n\nQuestion: {question}\n\n{context}"
INFBENCH_QA_PROMPT = (
    "You are given a story and a question. Answer the question as concisely as you can, using a single phrase if "
    "possible.\n\n{demo}{context}\n\nQuestion: {question}"
)
INFBENCH_CHOICE_PROMPT = (
    "You are given a story and a question with multiple choices. Choose the best answer from the options "
    "provided. Only one of the following options is correct, output the answer using one single letter (A, B, C, "
    "or D). Don't say anything else.\n\n{demo}{context}\n\nQuestion: {question}\nOptions:\n{options}"
)
INFBENCH_SUM_PROMPT = (
    "You are given a book and you are tasked to summarize it. Write a summary of about 1000 to 1200 words. Only "
    "write about the plot and characters of the story. Do not discuss the themes or background of the book. Do "
    "not provide any analysis or commentary.\n\n{demo}{context}\n\nNow summarize the book."
)
NARRATIVEQA_PROMPT = (
    "You are given a story, which can be either a novel or a movie script, and a question. Answer the question "
    "as concisely as you can, using a single phrase if possible.\n\n{demo}{context}\n\nQuestion: {question}"
)
NARRATIVEQA_DEMOS = ("For example:\n\n", "\n\nNow, use the following story to answer the question:\n\n")
MULTI_LEXSUM_PROMPT = (
    "You are given the legal documents in a civil rights lawsuit, and you are tasked to summarize the case. Write "
    "a concise summary of one paragraph (200 to 250 words). The summary should contain a short description of "
    "the background, the parties involved, and the outcomes of the case.\n\n{demo}Legal documents:\n{context}"
    "\n\nNow please summarize the case."
)
MULTI_LEXSUM_DEMOS = (
    "Example summaries:\n\n",
    "\n\nNow, write a summary of the following legal documents.\n",
)
ICL_PROMPT = (
    'Use the provided mapping from the text to label to assign a label to the text. Only output "label: {label}" '
    "and nothing else. \n\n{context}\n\n{question}"
)
PASSAGE = "Document (Title: {title}): {text}"

DEPARTURES = (
    "Records run are HELMET's draw of max_test_samples (100; 500 for ICL) with seed 42, loader by loader "
    "(sample=helmet, the default; sample=N draws N the same way, sample=all keeps the whole file in file order) "
    "and --limit takes the first N of the draw. The draw is over the records that pass validation: a bad line "
    "is reported and takes no place in it (HELMET's loaders would fail on it).",
    "ALCE demonstrations are HELMET's: the record at place p of its file gets the (p+1)-th random.sample of the "
    "prompt file's demonstrations after random.seed(42), as load_alce draws them mapping the file in order. A "
    "JSON-lines file's place is its line number less one (a blank line counts).",
    "InfiniteBench records are not cut to HELMET's fixed length with Llama-2's tokenizer; a record over the "
    "model window keeps the start of its context, as HELMET's cut does, but is cut at the window in the "
    "model's own tokens and without HELMET's ' ... [the rest of the text is omitted]' marker.",
    "Citation recall and precision need an NLI model (ALCE's TRUE T5-XXL, google/t5_xxl_true_nli_mixture): "
    "here the run's --judge stands in, asked in an entailment prompt (entailed when it grades the claim 1), or "
    "a local NLI model given as nli=DIR (a TRUE-style sequence-to-sequence model read as eval_alce.py reads "
    "it, or a classifier with an entailment label). Without either they are not computed and the Cite "
    "category averages the correctness metrics only. The functions follow eval_alce.py. Sentences are split by NLTK's Punkt with its untrained "
    "parameters (the pretrained English model is a data download).",
    "InfiniteBench's and Multi-LexSum's summaries and NarrativeQA's answers are graded by the run's --judge with "
    "its reference prompt, not HELMET's GPT-4o prompts (key-point F1, gpt-4-score); without a judge their rows "
    "are skipped with the reason.",
    "NarrativeQA and Multi-LexSum read the hub rows saved locally (narrativeqa/test.jsonl, "
    "multi_lexsum/validation.jsonl, and train.jsonl beside each for demonstrations). HELMET keeps only records "
    "longer than 128K (NarrativeQA) or 64K (Multi-LexSum) Llama-2 tokens; here every record is read. So "
    "NarrativeQA's draw is the first 100 of HELMET's shuffle of the whole test split, not of its long records "
    "(HELMET shuffles before it filters); Multi-LexSum's draw equals HELMET's only for a validation file already "
    "cut to the cases over 64K Llama-2 tokens (HELMET filters before it draws). Their "
    "demonstrations are drawn by a permutation seeded by the question (NarrativeQA) or the case id "
    "(Multi-LexSum); HELMET shuffles its training split unseeded for each record.",
    "The NLU ICL set reads the hub's one split saved as icl/nlu/train.jsonl and holds out a tenth as the test "
    "set as HELMET's train_test_split(test_size=0.1, seed=42) does (the same permutation, computed here); a "
    "line of the file that cannot be read still takes its place in the split.",
    "ICL reads each dataset's hub rows saved locally (icl/trec_coarse/test.jsonl and train.jsonl, ...; the test "
    "split is clinc_oos's validation split for clinic150, as HELMET uses it). A test split over 500 texts is cut to HELMET's label-balanced "
    "500 (its shuffle and balance_labels, seed 42); --limit then takes the first N of those. Lines without a "
    "label are reported as bad lines before the draw, which HELMET's files never hold.",
)


def _file_for(subset: str, size: str) -> str:
    """The file of HELMET's data folder that its configs read for ``subset`` at ``size``."""
    kilt = {"kilt_nq": "nq-dev", "kilt_triviaqa": "triviaqa-dev", "kilt_hotpotqa": "hotpotqa-dev"}
    ruler = {"ruler_niah_mk_2": "niah_multikey_2", "ruler_niah_mk_3": "niah_multikey_3",
             "ruler_niah_mv": "niah_multivalue"}  # fmt: skip
    if subset == "json_kv":
        return f"json_kv/test_k{KV_PAIRS[size]}_dep6.jsonl"
    if subset in ruler:
        return f"ruler/{ruler[subset]}/validation_{LENGTHS[size]}.jsonl"
    if subset in kilt:
        depth = "dep3" if subset == "kilt_hotpotqa" else "dep6"
        return f"kilt/{kilt[subset]}-multikilt_1000_k{KILT_PASSAGES[size]}_{depth}.jsonl"
    if subset == "kilt_popqa":
        return f"kilt/popqa_test_1000_k{KILT_PASSAGES[size]}_dep6.jsonl"
    if subset == "msmarco_rerank_psg":
        return f"msmarco/test_reranking_data_k{MSMARCO_PASSAGES[size]}_dep3.jsonl"
    if subset in ("alce_asqa", "alce_qampari"):
        return f"alce/{subset.split('_')[1]}_eval_gtr_top2000.json"
    if subset == "icl_nlu":  # one split on the hub: the test tenth is held out of it
        return "icl/nlu/train.jsonl"
    if subset in ICL:
        return f"icl/{subset[4:]}/test.jsonl"
    if subset == "narrativeqa":
        return "narrativeqa/test.jsonl"
    if subset == "multi_lexsum":
        return "multi_lexsum/validation.jsonl"
    return "infbench/" + {"infbench_qa": "longbook_qa_eng", "infbench_choice": "longbook_choice_eng",
                          "infbench_sum": "longbook_sum_eng"}[subset] + ".jsonl"  # fmt: skip


DEMO_FILES = {
    "kilt_nq": "kilt/nq-train-multikilt_1000_k3_dep6.jsonl",
    "kilt_triviaqa": "kilt/triviaqa-train-multikilt_1000_k3_dep6.jsonl",
    "kilt_hotpotqa": "kilt/hotpotqa-train-multikilt_1000_k3_dep3.jsonl",
    "kilt_popqa": "kilt/popqa_test_1000_k3_dep6.jsonl",
    "msmarco_rerank_psg": "msmarco/test_reranking_data_k10_dep3.jsonl",
    "alce_asqa": "prompts/asqa_revised.json",
    "alce_qampari": "prompts/qampari_revised.json",
    "narrativeqa": "narrativeqa/train.jsonl",
    "multi_lexsum": "multi_lexsum/train.jsonl",
}


def split_indices(count: int, test_share: float, seed: int) -> tuple[list[int], list[int]]:
    """(test, train) row indices as ``datasets.Dataset.train_test_split(test_size=test_share, seed=seed)`` splits
    ``count`` rows: one numpy default_rng permutation, its first ceil(share x count) the test rows, the rest the
    training rows, each in permutation order."""
    order = shuffled(count, seed)
    held_out = math.ceil(test_share * count)
    return order[:held_out], order[held_out:]


def text_seed(text: str) -> int:
    """HELMET's per-question seed: sha256 of the text, modulo 2**31."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 2**31


# The draws of load_alce's random.sample, by (demonstrations, shots): the sequence, and the generator it goes on from.
_ALCE_DRAWS: dict[tuple[int, int], tuple[random.Random, list[list[int]]]] = {}


def alce_demo_draw(position: int, population: int, shots: int) -> list[int]:
    """The demonstrations (indices into the prompt file's) that HELMET shows the ALCE record at ``position`` of
    its file: load_alce maps every record in file order, each calling ``random.sample(demos, shots)`` on the
    global random, which eval.py seeds with 42 just before; the record's draw is that sequence's
    ``position``-th."""
    rng, drawn = _ALCE_DRAWS.setdefault((population, shots), (random.Random(SEED), []))
    while len(drawn) <= position:
        drawn.append(rng.sample(range(population), shots))
    return drawn[position]


def _file_position(ref: str) -> int:
    """A record's place in its file (from 0), from its reference: ``name.json#3`` or ``name.jsonl:4``."""
    if "#" in ref:
        return int(ref.rsplit("#", 1)[1])
    return int(ref.rsplit(":", 1)[1]) - 1


def passages(ctxs: list[dict]) -> str:
    return "\n\n".join(PASSAGE.format(title=c.get("title", ""), text=c.get("text", "")) for c in ctxs)


@lru_cache(maxsize=16)
def _demo_rows(path: str, stamp: int) -> tuple[dict, ...]:
    if path.endswith(".jsonl"):
        return tuple(row for _, row in read_records(path) if isinstance(row, dict))
    try:
        return (json.loads(Path(path).read_text(encoding="utf-8")),)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


@lru_cache(maxsize=4)
def _infbench_demo_rows(subset: str, path: str, stamp: int) -> tuple[dict, ...]:
    """What an InfiniteBench demonstration shows of each valid record of its file (the book left out, so that
    the cache does not hold every book)."""
    task = Helmet(subset=subset)
    return tuple(
        {key: row.get(key) for key in ("id", "input", "answer", "options")}
        for _, row in read_records(path)
        if isinstance(row, dict) and task.validate(row) is None
    )


@lru_cache(maxsize=4)
def _held_in_rows(path: str, stamp: int) -> tuple[dict, ...]:
    """The NLU set's training rows: the file's rows left after the test tenth is held out, in split order."""
    rows = [row for _, row in read_records(path)]
    return tuple(
        row
        for row in (rows[i] for i in split_indices(len(rows), NLU_TEST_SHARE, ICL_SEED)[1])
        if isinstance(row, dict)
    )


def _is_docs(value: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and all(isinstance(item.get(k), str) for k in keys) for item in value
    )


@dataclass(frozen=True)
class Helmet(Benchmark):
    """HELMET: ``helmet`` for every dataset, ``helmet:kilt_nq`` for one; ``size=32k`` for that length's files."""

    name: ClassVar[str] = "helmet"
    description: ClassVar[str] = (
        "HELMET: recall, RAG, re-ranking (NDCG@10), citations, long QA and summaries in its prompts and metrics"
    )
    breakdowns: ClassVar[tuple[str, ...]] = ("dataset", "category")
    subsets: ClassVar[tuple[str, ...]] = DATASETS
    # ``helmet`` alone reads the datasets a rule scores; a judged one runs when named (with --judge).
    default_subsets: ClassVar[tuple[str, ...]] = tuple(d for d in DATASETS if d not in JUDGED)
    fields: ClassVar[dict[str, Any]] = {}  # each dataset's own, checked by ``validate``
    truncation: ClassVar[str] = "right"  # HELMET keeps the start of an over-long document
    id_field: ClassVar[str | None] = "id"
    departures: ClassVar[tuple[str, ...]] = DEPARTURES
    subset_metrics: ClassVar[dict[str, str]] = METRICS
    # HELMET's categories (collect_results.py's custom_avgs) for the report's per-category averages.
    # Cite averages each dataset's correctness with its citation recall and precision, as collect_results.py
    # does, where an entailment judge computed them ("alce_asqa citation_rec" is that sub-score's cell).
    categories: ClassVar[dict[str, tuple[str, ...]]] = {
        **CATEGORIES,
        "Cite": tuple(
            name
            for dataset in CATEGORIES["Cite"]
            for name in (dataset, f"{dataset} citation_rec", f"{dataset} citation_prec")
        ),
    }
    detail_scores: ClassVar[tuple[str, ...]] = ("citation_rec", "citation_prec")
    # Record shapes, for the custom loader's "looks like" hint.
    shapes: ClassVar[dict[str, dict[str, Any]]] = {
        "json_kv": {"context": str, "question": str, "answer": str, "num_kvs": int},
        "kilt_nq": {"question": str, "answers": list, "ctxs": list},
        "msmarco_rerank_psg": {"qid": str, "query": str, "ctxs": list},
        "alce_asqa": {"question": str, "qa_pairs": list, "docs": list},
    }

    size: str = "128k"
    shots: int = 2
    nli: str | None = None  # a local NLI model folder that judges citations' entailment in place of --judge
    # Which records run: "helmet" draws HELMET's max_test_samples (100; 500 for ICL) as its loaders draw them,
    # a number draws that many the same way, "all" keeps every record in file order.
    sample: str | int = "helmet"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in SIZES:
            raise UsageError(f"helmet: size must be one of {', '.join(SIZES)} (got {self.size!r})")
        if self.shots < 0:
            raise UsageError(f"helmet: shots must be 0 or more (got {self.shots})")
        if (
            isinstance(self.sample, str) and self.sample.isdigit()
        ):  # the command line gives every value as text
            object.__setattr__(self, "sample", int(self.sample))
        if not (self.sample in ("helmet", "all") or (isinstance(self.sample, int) and self.sample >= 1)):
            raise UsageError(
                f"helmet: sample must be helmet (HELMET's draw), all, or a number of records (got {self.sample!r})"
            )
        if self.nli is not None and not (Path(self.nli).expanduser() / "config.json").is_file():
            raise UsageError(
                f"helmet: nli={self.nli} is not a model folder (no config.json); give a local NLI model"
            )

    def label(self) -> str:
        """As the base labels it, without ``nli``: the NLI model judges citations, it does not change the samples,
        and its folder differs between machines."""
        return Benchmark.label(dataclasses.replace(self, nli=None))

    @property
    def needs_judge(self) -> bool:
        """Whether every dataset read is graded by a judge (a run of only those is refused without one)."""
        return all(subset in JUDGED for subset in self.read_subsets() if subset) and bool(self.subset)

    def data_files(self) -> list[str]:
        rel = _file_for(self.subset, self.size)
        if self.subset in ICL:  # the hub dataset's test split, saved as JSON lines or Parquet
            return [rel, rel.replace(".jsonl", ".parquet"), f"data/{rel}"]
        return [rel, f"data/{rel}", Path(rel).name]

    def _sources(self):
        if self.data is None:
            raise UsageError(
                "helmet reads local files: download data.tar.gz of the hub dataset princeton-nlp/HELMET, unpack "
                "it and pass --data DIR"
            )
        for subset, path in self._local_files():
            yield subset, self._drawn(subset, path)

    def test_samples(self, subset: str) -> int | None:
        """HELMET's ``max_test_samples`` for ``subset`` under ``sample``; None keeps every record."""
        if self.sample == "all":
            return None
        if self.sample == "helmet":
            return ICL_TEST_SAMPLES if subset in ICL else TEST_SAMPLES
        return int(self.sample)

    def _drawn(self, subset: str, path: Path) -> Iterator[tuple[str, dict | str]]:
        """The test rows HELMET evaluates, in the order it runs them: records that cannot be used first (to be
        reported), then the draw of ``_helmet_draw`` over the valid, selected ones. Read twice, so that only the
        drawn records are held in memory."""
        wanted = self.test_samples(subset)
        if wanted is None:
            yield from self._test_split(subset, path)
            return
        task = self._for(subset)
        bad: list[tuple[str, dict | str]] = []
        positions: list[int] = []
        keys: list[Any] = []
        has_id = False  # datasets' column_names: whether any record of the file has an "id"
        for position, (ref, row) in enumerate(self._test_split(subset, path)):
            has_id = has_id or (isinstance(row, dict) and "id" in row)
            if isinstance(row, str) or task.validate(row) is not None:
                bad.append((ref, row))
                continue
            if self.selects(row):
                positions.append(position)
                keys.append(_draw_key(subset, row))
        if not positions:  # nothing to draw from: the base loader says why, as for any file
            yield from self._test_split(subset, path)
            return
        if subset.startswith("kilt_"):
            order = draw_by_key([k["id"] if has_id else k["question"] for k in keys], wanted)
        elif subset == "msmarco_rerank_psg":
            order = draw_by_key(keys, wanted)
        elif subset in ICL:
            order = draw_balanced(keys, wanted)
        elif subset == "multi_lexsum":
            order = draw_shuffled_if_over(len(positions), wanted)
        else:
            order = draw_shuffled(len(positions), wanted)
        chosen = [positions[i] for i in order]
        wanted_positions = set(chosen)
        picked = {
            position: pair
            for position, pair in enumerate(self._test_split(subset, path))
            if position in wanted_positions
        }
        yield from bad
        yield from (picked[position] for position in chosen)

    def _test_split(self, subset: str, path: Path) -> Iterator[tuple[str, dict | str]]:
        """The rows of the test split in order: the file's, or NLU's tenth held out of its one split."""
        rows = read_records(path)
        if subset == "icl_nlu":
            listed = list(rows)
            return iter([listed[i] for i in split_indices(len(listed), NLU_TEST_SHARE, ICL_SEED)[0]])
        return rows

    def plane(self) -> tuple[float, float]:
        table = {"Recall": (0.4, 0.1), "RAG": (0.6, 0.2), "Re-rank": (0.5, 0.8), "ICL": (0.3, 0.7), "Cite": (0.6, 0.5),
                 "LongQA": (0.6, 0.4), "Summ": (0.3, 0.9)}  # fmt: skip
        datasets = [s for s in self.read_subsets() if s] or list(DATASETS)
        points = [table[CATEGORY[d]] for d in datasets]
        return (
            round(sum(p[0] for p in points) / len(points), 3),
            round(sum(p[1] for p in points) / len(points), 3),
        )

    # --- records ----------------------------------------------------------------------------------------

    def validate(self, data: dict) -> str | None:
        subset = self.subset
        if subset == "json_kv":
            return _need(data, context=str, question=str, answer=str)
        if subset.startswith("ruler_"):
            missing = _need(data, context=str, query=str, type_needle_v=str)
            gold = data.get("answer", data.get("outputs"))
            if missing is None and not (
                isinstance(gold, list) and gold and all(isinstance(a, str) for a in gold)
            ):
                return "field 'outputs' (or 'answer') should be a non-empty list of texts"
            return missing
        if subset.startswith("kilt_"):
            missing = _need(data, question=str)
            if missing is None and not (isinstance(data.get("answers"), list) and data["answers"]):
                return "field 'answers' should be a non-empty list of texts"
            if missing is None and not _is_docs(data.get("ctxs"), ("title", "text")):
                return "field 'ctxs' should be a list of {title, text} passages"
            if missing is None and subset == "kilt_popqa" and not isinstance(data.get("s_pop"), int | float):
                return "field 's_pop' (the popularity popqa is filtered by) should be a number"
            return missing
        if subset == "msmarco_rerank_psg":
            missing = _need(data, qid=str, query=str)
            if missing is None and not (_is_docs(data.get("ctxs"), ("id", "text")) and data["ctxs"]):
                return "field 'ctxs' should be a list of {id, text, label} passages"
            if missing is None and not all(isinstance(c.get("label"), int) for c in data["ctxs"]):
                return "every passage of 'ctxs' needs an integer 'label'"
            return missing
        if subset in ICL:
            field = ICL[subset][0]
            missing = _need(data, text=str)
            if missing is None and not (
                isinstance(data.get(field), int) and 0 <= data[field] < ICL[subset][1]
            ):
                return f"field {field!r} should be a label number below {ICL[subset][1]}"
            return missing
        if subset == "narrativeqa":
            document, question = data.get("document"), data.get("question")
            if not (isinstance(document, dict) and isinstance(document.get("text"), str)):
                return "field 'document' should be {text: ...} (NarrativeQA's hub rows)"
            if not (isinstance(question, dict) and isinstance(question.get("text"), str)):
                return "field 'question' should be {text: ...} (NarrativeQA's hub rows)"
            if not _narrative_answers(data):
                return "field 'answers' should be a non-empty list of {text: ...}"
            return None
        if subset == "multi_lexsum":
            sources, short = data.get("sources"), data.get("summary/short")
            if not (isinstance(sources, list) and sources and all(isinstance(x, str) for x in sources)):
                return "field 'sources' should be a non-empty list of texts (Multi-LexSum's hub rows)"
            if short is not None and not isinstance(short, str):
                return "field 'summary/short' should be a text or null"
            return None
        if subset.startswith("alce_"):
            missing = _need(data, question=str)
            if missing is None and not (_is_docs(data.get("docs"), ("title", "text")) and data["docs"]):
                return "field 'docs' should be a list of {title, text} documents"
            if missing is None and subset == "alce_asqa" and not _short_answers(data):
                return "field 'qa_pairs' should be a list of {short_answers: [...]}"
            if missing is None and subset == "alce_qampari" and not _answer_groups(data):
                return "field 'answers' should be a list of lists of aliases"
            return missing
        missing = _need(data, context=str, input=str)
        answer = data.get("answer")
        if missing is None and not (
            isinstance(answer, list) and answer and all(isinstance(a, str) for a in answer)
        ):
            return "field 'answer' should be a non-empty list of texts"
        if missing is None and subset == "infbench_choice":
            options = data.get("options")
            if not (isinstance(options, list) and len(options) == 4 and answer[0] in options):
                return "field 'options' should list four options, the answer among them"
        return missing

    def selects(self, data: dict) -> bool:
        """PopQA's records (the only ones with a popularity, ``s_pop``) about entities below HELMET's threshold;
        Multi-LexSum's cases that have a short summary (HELMET drops the others)."""
        if "summary/short" in data and data["summary/short"] is None:
            return False
        return "s_pop" not in data or _popular_below(data["s_pop"])

    def check(self, backend: Backend, length: int) -> None:
        """Read the records, and the demonstration and prompt files they need, before anything runs."""
        if self.shots > length:  # each demonstration takes tokens of the request, as a generator's count does
            raise UsageError(
                f"{self.label()}: shots={self.shots} items cannot fit in a request of {length} tokens; "
                "lower shots or raise the length"
            )
        for record in self.records():
            subset = record.subset or self.subset
            if subset in DEMO_FILES and (self.shots > 0 or subset.startswith("alce_")):
                self._demos(subset, record)
            if subset in ICL:
                self._icl_train(subset, record)

    # --- samples ----------------------------------------------------------------------------------------

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        subset = record.subset or self.subset
        data = record.data
        built = getattr(self, "_" + _family(subset))(subset, data, record)
        user, question, answers, system_template, extra = built
        context = extra.pop("_context", None)
        chat = subset in CHAT
        metadata: dict[str, Any] = {
            "dataset": subset,
            "category": CATEGORY[subset],
            "metric": METRICS[subset],
            **extra,
        }
        if not chat:
            # eval.py puts a completion's answer prefix back in front of the reply before scoring it.
            metadata["prepend"] = system_template
        if subset in STOP_AT_NEWLINE:
            metadata["stop"] = ["\n"]
        if subset in JUDGED:
            metadata["judge_prompt"] = "reference"  # graded by the run's --judge against the gold summary
        template = user.replace("{", "{{").replace("}", "}}")
        template = template.replace("{{context}}", "{context}").replace("{{question}}", "{question}")
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"] if context is None else context,
            turns=(
                Turn(
                    question=question,
                    answers=tuple(answers),
                    answer_prefix="" if chat else "\n" + system_template,
                ),
            ),
            template=template,
            max_new_tokens=OUTPUT_CAPS[subset],
            chat=chat,
            metadata=metadata,
        )

    # Each family returns (user template with {context} and {question} open, question, answers, the answer
    # prefix HELMET's completion prompt ends with, extra metadata).

    def _json_kv(self, subset: str, data: dict, record: Record):
        demos = data.get("demos") or []
        shown = "\n\n".join(f"Key: {k}\nCorresponding value: {v}" for k, v in demos[: self.shots])
        shown += "\n\n" if self.shots > 0 else ""
        user = KV_PROMPT.replace("{demos}", shown)
        return (
            user,
            data["question"],
            [data["answer"]],
            "Corresponding value:",
            {
                "parse_prefix": "corresponding value:",
                "num_kvs": data.get("num_kvs"),
            },
        )

    def _ruler(self, subset: str, data: dict, record: Record):
        prompt = NIAH_MV_PROMPT if subset == "ruler_niah_mv" else NIAH_PROMPT
        kind, query = data["type_needle_v"], data["query"]
        user = prompt.replace("{type_needle_v}", kind).replace("{query}", "{question}")
        verb = "are" if subset == "ruler_niah_mv" else "is"
        system = f"The special magic {kind} for {query} mentioned in the provided text {verb}"
        return user, query, data.get("answer", data.get("outputs")), system, {}

    def _kilt(self, subset: str, data: dict, record: Record):
        key = "id" if "id" in data else "question"
        demos = ""
        if self.shots > 0:
            pool = [
                d
                for d in self._demos(subset, record)
                if subset != "kilt_popqa"
                or (d.get(key) != data.get(key) and _popular_below(d.get("s_pop", 0)))
            ]
            chosen = _first_distinct([pool[i] for i in shuffled(len(pool), text_seed(str(data[key])))], key)
            demos = "\n\n".join(
                f"{passages(d.get('ctxs') or [])}\n\nQuestion: {d['question']}\nAnswer: {d['answers'][0]}"
                for d in chosen[: self.shots]
            )
            demos += "\n\n"
        user = QA_PROMPT.replace("{demos}", demos)
        gold_docs = [c for c in data["ctxs"] if c.get("has_answer")]
        extra = {"_context": passages(data["ctxs"]), "evidence_titles": [c.get("title") for c in gold_docs]}
        return user, data["question"], [str(a) for a in data["answers"]], "Answer:", extra

    def _msmarco(self, subset: str, data: dict, record: Record):
        template = "[ID: {id}] Document (Title: {title}): {text}"
        plain = "[ID: {id}] Document: {text}"

        # The record's passages decide the shape, for its demonstrations too (as data.py does).
        shape = template if "title" in data["ctxs"][0] else plain

        def listing(ctxs: list[dict]) -> str:
            return "\n\n".join(
                shape.format(id=c["id"], title=c.get("title", ""), text=c["text"]) for c in ctxs
            )

        demos = ""
        if self.shots > 0:
            rows = self._demos(subset, record)
            tested = self._rerank_test_queries()
            # load_msmarco_rerank: a demonstration file over twice the test set's size loses every test query,
            # a smaller one only the record's own
            left_out = set(tested) if len(rows) > 2 * len(tested) else {data["qid"]}
            pool = [d for d in rows if d.get("qid") not in left_out and d.get("ctxs")]
            chosen = _first_distinct([pool[i] for i in shuffled(len(pool), text_seed(data["qid"]))], "qid")
            for demo in chosen[: self.shots]:
                order = sorted(demo["ctxs"], key=lambda c: c["label"], reverse=True)
                ranking = " > ".join(c["id"] for c in order)
                demos += f"{listing(demo['ctxs'])}\n\nQuery: {demo['query']}\nRanking: {ranking}\n\n"
        user = RERANK_PROMPT.replace("{demos}", demos)
        gold = " > ".join(c["id"] for c in sorted(data["ctxs"], key=lambda c: c["label"], reverse=True))
        qrels = {c["id"]: c["label"] for c in data["ctxs"]}
        return user, data["query"], [gold], "Ranking:", {"_context": listing(data["ctxs"]), "qrels": qrels}

    def _rerank_test_queries(self) -> list[str]:
        """The query ids of MS MARCO's test set as HELMET holds it when it picks demonstrations: its draw (before
        --limit), one per record."""
        cached = self.__dict__.get("_rerank_queries")
        if cached is None:
            subset = "msmarco_rerank_psg"
            task = self._for(subset)
            path = next(path for name, path in self._local_files() if name == subset)
            cached = [
                row["qid"]
                for _, row in self._drawn(subset, path)
                if isinstance(row, dict) and task.validate(row) is None
            ]
            object.__setattr__(self, "_rerank_queries", cached)
        return cached

    def _icl(self, subset: str, data: dict, record: Record):
        field, labels, shots = ICL[subset]
        count = shots[SIZES.index(self.size)]
        # load_icl's per-text seed; the demonstrations are balanced over labels, the label names replaced by
        # numbers in an order drawn from the same seed ("_balance", not "natural_label", in HELMET's configs).
        seed = (int(hashlib.sha256(data["text"].encode("utf-8")).hexdigest(), 16) + ICL_SEED) % 2**31
        # A training row whose label is not one of the set's (a damaged file) cannot be shown as a number.
        pool = [
            d for d in self._icl_train(subset, record)
            if isinstance(d.get("text"), str) and isinstance(d.get(field), int) and 0 <= d[field] < labels
        ]  # fmt: skip
        demos = balance_labels(pool, field, count, seed)
        mapping = list(range(labels))
        # load_icl seeds the module's random and shuffles; a Random of the same seed draws the same order.
        random.Random(seed).shuffle(mapping)
        context = "\n\n".join(f"{d['text']}\nlabel: {mapping[int(d[field])]}" for d in demos)
        extra = {"_context": context, "parse_prefix": "label:", "shots": count}
        return ICL_PROMPT, data["text"], [str(mapping[int(data[field])])], "label:", extra

    def _icl_train(self, subset: str, record: Record) -> tuple[dict, ...]:
        """The training split the demonstrations come from: ``train.jsonl`` (or .parquet) beside ``test``."""
        test = Path(self.data or ".").expanduser()
        folder = (
            test.parent
            if test.is_file()
            else next(
                (
                    test / base / "icl" / subset[4:]
                    for base in ("", "data")
                    if (test / base / "icl" / subset[4:]).is_dir()
                ),
                test,
            )
        )
        found = next((folder / n for n in ("train.jsonl", "train.parquet") if (folder / n).is_file()), None)
        if found is None:
            raise UsageError(
                f"helmet:{subset} needs the training split beside its test split: {folder / 'train.jsonl'}"
            )
        if subset == "icl_nlu":  # the nine tenths of the one split that HELMET trains on
            return _held_in_rows(str(found), found.stat().st_mtime_ns)
        return _demo_rows(str(found), found.stat().st_mtime_ns)

    def _alce(self, subset: str, data: dict, record: Record):
        prompt_file = self._demos(subset, record)[0]
        for key in ("instruction", "demo_prompt", "doc_prompt"):
            if not isinstance(prompt_file.get(key), str):
                raise UsageError(
                    f"{DEMO_FILES[subset]}: field {key!r} is missing; is it HELMET's prompt file?"
                )
        doc_prompt = prompt_file["doc_prompt"]

        def documents(docs: list[dict]) -> str:
            return "\n\n".join(
                doc_prompt.replace("{ID}", str(i + 1))
                .replace("{title}", d["title"])
                .replace("{text}", d["text"])
                for i, d in enumerate(docs)
            )

        count = ALCE_DOCS[self.size]
        demos = prompt_file.get("demos") or []
        picks = alce_demo_draw(_file_position(record.ref), len(demos), min(self.shots, len(demos)))
        picked = [demos[i] for i in picks]
        demo_text = "\n\n\n".join(
            prompt_file["demo_prompt"]
            .replace("{instruction}", prompt_file["instruction"])
            .replace("{question}", d["question"])
            .replace("{context}", documents(d.get("docs") or []))
            .replace("{answer}", d.get("answer", ""))
            for d in picked
        )
        demo_text += "\n\n\n" if picked else ""
        user = ALCE_PROMPT.replace("{demo_text}", demo_text).replace(
            "{instruction}", prompt_file["instruction"]
        )
        extra: dict[str, Any] = {
            "_context": documents(data["docs"][:count]),
            "documents": count,
            # what citation recall and precision check the reply's "[n]" against (longscope.judging.entailment)
            "citation_docs": [
                {k: d[k] for k in ("title", "text", "sent") if isinstance(d.get(k), str)}
                for d in data["docs"][:count]
            ],
            "citation_claims": "qampari" if subset == "alce_qampari" else "sentences",
        }
        if self.nli is not None:
            extra["nli_model"] = str(Path(self.nli).expanduser().resolve())
        if subset == "alce_asqa":
            pairs = _short_answers(data)
            extra["qa_pairs"] = pairs
            answers = [a for pair in pairs for a in pair]
        else:
            groups = _answer_groups(data)
            extra["answer_groups"] = groups
            answers = [group[0] for group in groups]
        return user, data["question"], answers, "Answer:", extra

    def _infbench(self, subset: str, data: dict, record: Record):
        options = ""
        answers = list(data["answer"])
        if subset == "infbench_choice":
            options = "A. {}\nB. {}\nC. {}\nD. {}".format(*data["options"])
            letter = chr(ord("A") + data["options"].index(data["answer"][0]))
            answers = [letter, f"{letter}. {data['answer'][0]}"]
        prompt = {"infbench_qa": INFBENCH_QA_PROMPT, "infbench_choice": INFBENCH_CHOICE_PROMPT,
                  "infbench_sum": INFBENCH_SUM_PROMPT}[subset]  # fmt: skip
        user = prompt.replace("{demo}", self._infbench_demo(subset, data)).replace("{options}", options)
        system = "Summary:" if subset == "infbench_sum" else "Answer:"
        return user, data["input"], answers, system, {}

    def _infbench_demo(self, subset: str, data: dict) -> str:
        """load_infbench's demonstrations: the other records of the file, shuffled with seed 42 (the same order
        for every record), the first ``shots`` shown without their book."""
        if self.shots == 0:
            return ""
        path = next(path for name, path in self._local_files() if name in (subset, ""))
        rows = _infbench_demo_rows(subset, str(path), path.stat().st_mtime_ns)
        pool = [row for row in rows if row.get("id") != data.get("id")]
        chosen = [pool[i] for i in shuffled(len(pool), SEED)[: self.shots]]
        if not chosen:  # a file of one record has nothing to show (HELMET's select would fail)
            return ""
        shown = []
        for row in chosen:
            answer, options = row["answer"], row.get("options") or []
            if subset == "infbench_qa":
                shown.append(f"[story text]\nQuestion: {row['input']}\nAnswer: {answer[0]}")
            elif subset == "infbench_choice":
                listed = "A. {}\nB. {}\nC. {}\nD. {}".format(*options)
                letter = chr(ord("A") + options.index(answer[0]))
                shown.append(f"[story text]\nQuestion: {row['input']}\nOptions:\n{listed}\nAnswer: {letter}")
            else:
                shown.append(f"[story text]\nSummary: {answer[0].strip()}")
        return "For example:\n\n" + "\n\n".join(shown) + "\n\nNow, read the following story:\n\n"

    def _narrativeqa(self, subset: str, data: dict, record: Record):
        question = data["question"]["text"]
        demo = ""
        if self.shots > 0:
            pool = [d for d in self._demos(subset, record) if _narrative_answers(d) and _question_text(d)]
            chosen = [pool[i] for i in shuffled(len(pool), text_seed(question))][: self.shots]
            shown = "\n\n".join(
                f"Question: {_question_text(d)}\nAnswer: {_narrative_answers(d)[0]}" for d in chosen
            )
            demo = NARRATIVEQA_DEMOS[0] + shown + NARRATIVEQA_DEMOS[1]
        user = NARRATIVEQA_PROMPT.replace("{demo}", demo)
        extra = {"_context": data["document"]["text"]}
        return user, question, _narrative_answers(data), "Answer:", extra

    def _multi_lexsum(self, subset: str, data: dict, record: Record):
        demo = ""
        if self.shots > 0:
            pool = [d for d in self._demos(subset, record) if isinstance(d.get("summary/short"), str)]
            seed = text_seed(str(data.get("id") or data["sources"][0]))
            chosen = [pool[i] for i in shuffled(len(pool), seed)][: self.shots]
            shown = "\n\n".join(f"Summary: {d['summary/short']}" for d in chosen)
            demo = MULTI_LEXSUM_DEMOS[0] + shown + MULTI_LEXSUM_DEMOS[1]
        # HELMET's prompt asks no question; its closing instruction stands as the question the judge reads.
        instruction = "Now please summarize the case."
        user = MULTI_LEXSUM_PROMPT.replace("{demo}", demo).replace(instruction, "{question}")
        extra = {"_context": "\n\n".join(data["sources"])}
        return user, instruction, [data["summary/short"]], "Summary:", extra

    # --- demonstrations ---------------------------------------------------------------------------------

    def _demos(self, subset: str, record: Record) -> tuple[dict, ...]:
        """The rows of ``subset``'s demonstration (or prompt) file, found beside the data as HELMET lays it out."""
        rel = DEMO_FILES[subset]
        root = Path(self.data or ".").expanduser()
        record_file = record.ref.rsplit(":", 1)[0].rsplit("#", 1)[0]
        folders = [root, root / "data", root.parent] if root.is_dir() else [root.parent, root.parent.parent]
        candidates = [folder / rel for folder in folders] + [folder / Path(rel).name for folder in folders]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise UsageError(
                f"helmet:{subset} with shots={self.shots} needs {rel} beside {record_file}; pass shots=0 to run "
                "without demonstrations"
                if not subset.startswith("alce_")
                else f"helmet:{subset} needs HELMET's {rel} in --data (from its repository)"
            )
        return _demo_rows(str(found), found.stat().st_mtime_ns)


def _family(subset: str) -> str:
    for prefix, family in (("json_kv", "json_kv"), ("ruler_", "ruler"), ("kilt_", "kilt"), ("icl_", "icl"),
                           ("msmarco", "msmarco"), ("alce_", "alce"), ("infbench_", "infbench"),
                           ("narrativeqa", "narrativeqa"), ("multi_lexsum", "multi_lexsum")):  # fmt: skip
        if subset.startswith(prefix):
            return family
    raise ValueError(subset)


def _popular_below(popularity: Any) -> bool:
    """Whether an entity's popularity is below PopQA's threshold: log10(s_pop) < 3 (a popularity of 0 counts)."""
    value = float(popularity) if isinstance(popularity, int | float) else 0.0
    return value <= 0 or float(np.log10(value)) < POPQA_THRESHOLD


def _draw_key(subset: str, data: dict) -> Any:
    """What HELMET's draw for ``subset`` reads of a record: KILT's id and question (which one decides is the
    file's columns), MS MARCO's query id, an ICL record's label; the shuffles read nothing."""
    if subset.startswith("kilt_"):
        return {"id": data.get("id"), "question": data["question"]}
    if subset == "msmarco_rerank_psg":
        return data["qid"]
    if subset in ICL:
        return data[ICL[subset][0]]
    return None


def _need(data: dict, **fields: type) -> str | None:
    for name, kind in fields.items():
        if name not in data:
            return f"field {name!r} is missing"
        if not isinstance(data[name], kind):
            return f"field {name!r} should be {kind.__name__}"
    return None


def _short_answers(data: dict) -> list[list[str]]:
    pairs = data.get("qa_pairs")
    if not isinstance(pairs, list):
        return []
    found = [p.get("short_answers") for p in pairs if isinstance(p, dict)]
    ok = all(isinstance(a, list) and all(isinstance(x, str) for x in a) for a in found)
    return [list(a) for a in found] if found and ok and len(found) == len(pairs) else []


def _answer_groups(data: dict) -> list[list[str]]:
    groups = data.get("answers")
    if not isinstance(groups, list) or not groups:
        return []
    if all(isinstance(g, list) and g and all(isinstance(x, str) for x in g) for g in groups):
        return [list(g) for g in groups]
    return []


def _question_text(data: dict) -> str:
    question = data.get("question")
    return question.get("text", "") if isinstance(question, dict) else ""


def _narrative_answers(data: dict) -> list[str]:
    """NarrativeQA's gold answers (its rows hold them as [{text, tokens}, ...]); [] when they are malformed."""
    answers = data.get("answers")
    if not (isinstance(answers, list) and answers):
        return []
    texts = [a.get("text") if isinstance(a, dict) else None for a in answers]
    return [str(t) for t in texts] if all(isinstance(t, str) for t in texts) else []


def _first_distinct(rows: list[dict], key: str) -> list[dict]:
    """Rows in order, each value of ``key`` kept once (HELMET's drop_duplicates)."""
    seen: set = set()
    kept = []
    for row in rows:
        if row.get(key) in seen:
            continue
        seen.add(row.get(key))
        kept.append(row)
    return kept

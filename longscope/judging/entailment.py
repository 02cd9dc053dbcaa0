"""Entailment judgements for citation recall and precision: do these passages support this claim? Asked of the
run's judge model in its own prompt, or of a local NLI model when a task names one (ALCE and HELMET use the
TRUE T5-XXL NLI model); the rows of samples that cite documents get their citation scores here."""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from longscope.core import Result, Sample, UsageError
from longscope.judging.cost import Usage
from longscope.judging.judge import GradingRequest, Judge
from longscope.judging.prompts import JudgePrompt
from longscope.scoring.citations import citation_scores

# What a task writes into the metadata of a sample whose reply cites documents:
#   citation_docs:  the documents shown, in order, as {title, text} (or {title, sent}): "[n]" cites the n-th
#   citation_claims: "sentences" (each sentence of the reply is a claim) or "qampari" (each comma-separated
#                    answer, prefixed with the question, is one)
#   nli_model:      optional, a local NLI model folder that judges entailment instead of the run's judge
CITATION_DOCS = "citation_docs"

ENTAILMENT = JudgePrompt(
    name="entailment",
    version="1",
    system=(
        "You check whether passages support a claim, as a natural language inference model does. A claim is "
        "supported only when everything it states follows from the passages; what you know yourself does not "
        "count, and a claim the passages say nothing about is not supported."
    ),
    template=(
        "The passages:\n<passages>\n{instruction}\n</passages>\n\n"
        "The claim:\n<claim>\n{response}\n</claim>\n\n"
        "Answer this question about them:\n{items}\n\n"
        "Answer with exactly one line written as\n1: <grade> - <one short reason>\n"
        "where the grade is 1 when the passages support the whole claim and 0 when they do not. Use only the "
        "grades 0 and 1, and write nothing else."
    ),
)
ENTAILMENT_ITEM = ("Do the passages, taken together, support every part of the claim?",)


class EntailmentFailed(RuntimeError):
    """The judge could not give an entailment judgement (it failed, or its replies could not be read)."""


class JudgeEntailment:
    """Entailment asked of the run's judge: entailed when it grades the claim 1 (fully supported), as an NLI
    model's binary "entailment" label. Its calls are cached by the judge and added up in ``usage``."""

    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self.usage = Usage()

    def __call__(self, passage: str, claim: str) -> bool:
        judgement = self.judge.grade(GradingRequest(ENTAILMENT, passage, claim, ENTAILMENT_ITEM))
        self.usage.add(judgement.usage)
        if not judgement.ok:
            raise EntailmentFailed(judgement.error or "the judge gave no judgement")
        return judgement.grades[0] == 1.0


class NliEntailment:
    """Entailment from a local NLI model (a transformers folder): a sequence-to-sequence model in the TRUE
    format (``premise: P hypothesis: H``, entailed when it writes "1", as eval_alce.py reads it), or a sequence
    classifier, entailed when its most likely label is the one whose name says entailment."""

    def __init__(self, folder: str) -> None:
        import torch
        from transformers import AutoConfig, AutoTokenizer

        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise UsageError(
                f"nli={folder}: not a model folder (no config.json); give a local NLI model's folder"
            )
        config = AutoConfig.from_pretrained(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        if self.seq2seq:
            from transformers import AutoModelForSeq2SeqLM

            self.model = AutoModelForSeq2SeqLM.from_pretrained(path)
            self.entailed_label = -1
        else:
            from transformers import AutoModelForSequenceClassification

            self.model = AutoModelForSequenceClassification.from_pretrained(path)
            labels = {int(i): str(name).lower() for i, name in self.model.config.id2label.items()}
            found = [i for i, name in labels.items() if "entail" in name and "not" not in name]
            if len(found) != 1:
                raise UsageError(
                    f"nli={folder}: its labels ({', '.join(labels.values())}) name no single entailment label"
                )
            self.entailed_label = found[0]
        self.model.eval()
        self._torch = torch

    def __call__(self, passage: str, claim: str) -> bool:
        with self._torch.inference_mode():
            if self.seq2seq:
                ids = self.tokenizer(f"premise: {passage} hypothesis: {claim}", return_tensors="pt").input_ids
                written = self.model.generate(ids, max_new_tokens=10)
                return self.tokenizer.decode(written[0], skip_special_tokens=True) == "1"
            encoded = self.tokenizer(passage, claim, return_tensors="pt", truncation=True)
            return int(self.model(**encoded).logits[0].argmax()) == self.entailed_label


@lru_cache(maxsize=2)
def nli_model(folder: str) -> NliEntailment:
    """One loaded NLI model per folder for the whole run."""
    return NliEntailment(folder)


def cites(sample: Sample) -> bool:
    return CITATION_DOCS in sample.metadata


def check_citations(judge: Judge | None, sample: Sample, results: list[Result]) -> list[Result]:
    """The answered rows of a sample that cites documents with citation recall and precision in their details
    (``citation_rec``, ``citation_prec``, in [0, 1]), judged by the sample's NLI model or else the run's judge;
    without either the rows keep the reason they were not computed. A judge that fails leaves the reason
    instead; the row's own score (its correctness) is never changed."""
    if not cites(sample):
        return results
    folder = sample.metadata.get("nli_model")
    if folder is None and judge is None:
        return results
    checked = []
    for row in results:
        if row.status != "ok":
            checked.append(row)
            continue
        entails: Any = nli_model(folder) if folder else JudgeEntailment(judge)  # type: ignore[arg-type]
        details = json.loads(row.details) if row.details else {}
        try:
            found = citation_scores(
                row.prediction,
                sample.metadata[CITATION_DOCS],
                entails,
                question=sample.turns[row.turn].question,
                qampari=sample.metadata.get("citation_claims") == "qampari",
            )
        except EntailmentFailed as exc:
            details["citation_rec"] = details["citation_prec"] = f"entailment not judged: {exc}"[:500]
        else:
            if found is None:
                details["citation_rec"] = details["citation_prec"] = "the reply makes no claim to check"
            else:
                details["citation_rec"], details["citation_prec"] = found
        details["entailment_by"] = f"nli:{folder}" if folder else judge.identity  # type: ignore[union-attr]
        row = dataclasses.replace(row, details=json.dumps(details, sort_keys=True, ensure_ascii=False))
        if isinstance(entails, JudgeEntailment):
            row = _with_judge_usage(row, judge, entails.usage)  # type: ignore[arg-type]
        checked.append(row)
    return checked


def _with_judge_usage(row: Result, judge: Judge, usage: Usage) -> Result:
    """The row with the judge's calls added to its judge columns (a judged row may hold a grade's already)."""
    return dataclasses.replace(
        row,
        judge=row.judge or judge.identity,
        judge_calls=(row.judge_calls or 0) + usage.calls,
        judge_input_tokens=(row.judge_input_tokens or 0) + usage.input_tokens,
        judge_output_tokens=(row.judge_output_tokens or 0) + usage.output_tokens,
        judge_s=(row.judge_s or 0.0) + usage.seconds,
        judge_cost=None
        if usage.cost is None and row.judge_cost is None
        else (row.judge_cost or 0.0) + (usage.cost or 0.0),
    )

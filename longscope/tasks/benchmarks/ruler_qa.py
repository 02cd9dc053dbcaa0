"""RULER's QA tasks (Hsieh et al., 2024), qa_1 on SQuAD v2 dev and qa_2 on HotpotQA dev, built from local files
and fitted to the run's exact lengths.

Data (local only): the files RULER's ``download_qa_dataset.sh`` fetches, ``squad.json`` (SQuAD v2.0 dev,
``dev-v2.0.json``) for qa_1 and ``hotpotqa.json`` (HotpotQA dev distractor, ``hotpot_dev_distractor_v1.json``)
for qa_2, given as --data (the file, or a directory holding it under either name). As RULER reads them: a
SQuAD question that is not impossible has its paragraph as the gold document and the other paragraphs of its
article as first-choice distractors; a HotpotQA question has all its context paragraphs ("title\\ntext") as
gold documents. Documents are de-duplicated across the file; seed ``s`` asks the file's ``s``-th question
(cycling past the end). A question that cannot be used (no question text, no answer) is rejected by reference.

Sample: RULER's QA template and answer prefix, the documents as "Document 1:", "Document 2:", ... blocks.
Unlike RULER, which packs whole documents up to the length and leaves the rest unused, the whole request is
fitted to exactly the target length: distractor documents (the question's own article first, as RULER picks
them, then others) fill the length, the gold documents sit at positions drawn from the seed across the
documents, and the last few tokens are made up with the tail of a distractor placed before "Document 1:".
Replies are capped at RULER's 32 tokens; the score is RULER's ``string_match_part`` (``contains_any``).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from longscope.cache import stable_hash
from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, count_many, split_sentences
from longscope.tasks.base import Task

TEMPLATE = (
    "Answer the question based on the given documents. Only give me the answer and do not output any other "
    "words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given "
    "documents. Only give me the answer and do not output any other words.\n\nQuestion: {question}"
)
# RULER appends " Answer:" to the prompt; the assistant turn starts with it (the space only separated it from
# the question in a plain-text prompt).
ANSWER_PREFIX = "Answer:"
OUTPUT_CAP = 32
SUBSETS = {"qa_1": "squad", "qa_2": "hotpotqa"}
FILES = {
    "qa_1": ("squad.json", "dev-v2.0.json"),
    "qa_2": ("hotpotqa.json", "hotpot_dev_distractor_v1.json"),
}


@dataclass(frozen=True)
class Question:
    ref: str  # where it was read, for messages: "squad.json#data[0].paragraphs[2].qas[1]"
    question: str
    answers: tuple[str, ...]
    gold: tuple[int, ...]  # indices of its documents
    related: tuple[int, ...] = ()  # the other paragraphs of its article (SQuAD)
    # What the record marks as the answer's evidence: the sentences holding SQuAD's answer spans, HotpotQA's
    # supporting facts; the measured difficulty plane reads it.
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class QAData:
    questions: tuple[Question, ...]
    documents: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"cannot read {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def read_squad(path: Path) -> QAData:
    """SQuAD v2 as RULER reads it: answerable questions, their paragraph, the article's other paragraphs."""
    raw = _load_json(path)
    articles = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(articles, list):
        raise UsageError(f'{path} is not a SQuAD file: it needs a "data" list of articles with paragraphs')
    contexts = [
        paragraph["context"]
        for article in articles
        if isinstance(article, dict) and isinstance(article.get("paragraphs"), list)
        for paragraph in article["paragraphs"]
        if isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str)
    ]
    documents = sorted(set(contexts))
    index = {text: i for i, text in enumerate(documents)}
    questions: list[Question] = []
    rejected: list[tuple[str, str]] = []
    for a, article in enumerate(articles):
        where = f"{path.name}#data[{a}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            rejected.append((where, "an article needs a 'paragraphs' list"))
            continue
        own = [index[p["context"]] for p in paragraphs if isinstance(p, dict) and p.get("context") in index]
        for p, paragraph in enumerate(paragraphs):
            here = f"{where}.paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                rejected.append((here, "a paragraph needs a 'context' string"))
                continue
            doc = index[paragraph["context"]]
            for q, qa in enumerate(paragraph.get("qas") or []):
                ref = f"{here}.qas[{q}]"
                reason, item = _squad_question(qa)
                if reason:
                    rejected.append((ref, reason))
                elif item is not None:
                    question, answers = item
                    related = tuple(i for i in own if i != doc)
                    evidence = _answer_sentences(paragraph["context"], qa["answers"])
                    questions.append(Question(ref, question, answers, (doc,), related, evidence))
    return QAData(tuple(questions), tuple(documents), tuple(rejected))


def _squad_question(qa: Any) -> tuple[str | None, tuple[str, tuple[str, ...]] | None]:
    """(reason it is unusable, None) or (None, (question, answers)); impossible questions give (None, None)."""
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
        return "a question needs a 'question' string", None
    if qa.get("is_impossible") is True:
        return None, None  # RULER asks only answerable questions
    answers = qa.get("answers")
    texts = [a.get("text") for a in answers if isinstance(a, dict)] if isinstance(answers, list) else []
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        return "field 'answers' should be a list of {'text': ...} with at least one answer", None
    return None, (qa["question"], tuple(texts))


def _answer_sentences(paragraph: str, answers: list) -> tuple[str, ...]:
    """The sentences of a SQuAD paragraph that its answer spans (``answer_start``) fall in; the whole paragraph
    where no span can be placed."""
    sentences = split_sentences(paragraph)
    if "".join(sentences) != paragraph:
        return (paragraph.strip(),)
    bounds, start = [], 0
    for sentence in sentences:
        bounds.append((start, start + len(sentence)))
        start += len(sentence)
    found: dict[str, None] = {}
    for answer in answers:
        begin, text = answer.get("answer_start"), answer.get("text", "")
        if not isinstance(begin, int) or paragraph[begin : begin + len(text)] != text:
            continue
        for sentence, (low, high) in zip(sentences, bounds, strict=True):
            if low < begin + len(text) and begin < high and sentence.strip():
                found[sentence.strip()] = None
    return tuple(found) or (paragraph.strip(),)


def _supporting_sentences(item: dict) -> tuple[str, ...]:
    """HotpotQA's supporting facts ([title, sentence index] pairs) as the sentences they point to."""
    by_title = {title: sentences for title, sentences in item["context"]}
    facts = item.get("supporting_facts")
    found = [
        by_title[fact[0]][fact[1]].strip()
        for fact in (facts if isinstance(facts, list) else [])
        if isinstance(fact, list | tuple)
        and len(fact) == 2
        and fact[0] in by_title
        and isinstance(fact[1], int)
        and 0 <= fact[1] < len(by_title[fact[0]])
    ]
    return tuple(dict.fromkeys(text for text in found if text))


def read_hotpotqa(path: Path) -> QAData:
    """HotpotQA (distractor setting) as RULER reads it: every context paragraph of a question is gold."""
    raw = _load_json(path)
    if not isinstance(raw, list):
        raise UsageError(f"{path} is not a HotpotQA file: it needs a list of questions with their context")
    parsed: list[tuple[str, str, str, list[str], tuple[str, ...]] | None] = []
    rejected: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        reason = _hotpot_problem(item)
        if reason:
            rejected.append((f"{path.name}#{i}", reason))
            parsed.append(None)
            continue
        paragraphs = [f"{title}\n{''.join(sentences)}" for title, sentences in item["context"]]
        parsed.append(
            (f"{path.name}#{i}", item["question"], item["answer"], paragraphs, _supporting_sentences(item))
        )
    documents = sorted({p for entry in parsed if entry for p in entry[3]})
    index = {text: i for i, text in enumerate(documents)}
    questions = tuple(
        Question(ref, question, (answer,), tuple(index[p] for p in paragraphs), evidence=evidence)
        for ref, question, answer, paragraphs, evidence in (entry for entry in parsed if entry)
    )
    return QAData(questions, tuple(documents), tuple(rejected))


def _hotpot_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"not a JSON object ({type(item).__name__})"
    for name in ("question", "answer"):
        if not isinstance(item.get(name), str) or not item[name].strip():
            return f"field {name!r} should be a non-empty string"
    context = item.get("context")
    well_formed = isinstance(context, list) and all(
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], list)
        and all(isinstance(s, str) for s in pair[1])
        for pair in context
    )
    if not well_formed or not context:
        return "field 'context' should be a list of [title, [sentences]]"
    return None


@lru_cache(maxsize=8)
def _read(path: str, kind: str, size: int, mtime: int) -> QAData:
    """Read once per file version (size and modification time are part of the key)."""
    return read_squad(Path(path)) if kind == "squad" else read_hotpotqa(Path(path))


def _document(number: int, text: str) -> str:
    return f"\n\nDocument {number}:\n{text}"


@dataclass(frozen=True)
class RulerQA(Task):
    """RULER qa_1 (SQuAD) or qa_2 (HotpotQA) at exact lengths: ``ruler_qa:qa_2`` with ``--data hotpotqa.json``."""

    name: ClassVar[str] = "ruler_qa"
    description: ClassVar[str] = "RULER QA: answer from gold documents hidden among distractor documents"
    metric: ClassVar[str] = "contains_any"
    # Reads the run's --data (local SQuAD / HotpotQA files) though it is fitted to the run's lengths.
    reads_data: ClassVar[bool] = True

    subset: str = "qa_1"
    data: str | None = None
    max_new_tokens: int = OUTPUT_CAP

    def __post_init__(self) -> None:
        if self.subset not in SUBSETS:
            raise UsageError(f"unknown subset {self.subset!r} of ruler_qa; subsets: {', '.join(SUBSETS)}")

    @property
    def diffusion(self) -> float:
        # Distractors are real paragraphs, for SQuAD from the gold paragraph's own article.
        return {"qa_1": 0.5, "qa_2": 0.5}[self.subset]

    @property
    def scope(self) -> float:
        # One paragraph answers a SQuAD question; HotpotQA needs two supporting paragraphs.
        return {"qa_1": 0.1, "qa_2": 0.2}[self.subset]

    def label(self) -> str:
        """``ruler_qa:qa_2``: as the command line writes it, without where the data was read from."""
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name not in ("subset", "data") and getattr(self, f.name) != getattr(type(self)(), f.name)
        ]
        return f"{self.name}:{self.subset}" + (f"({','.join(changed)})" if changed else "")

    def with_data(self, data: str | None) -> RulerQA:
        return dataclasses.replace(self, data=data) if self.data is None and data is not None else self

    # --- data -------------------------------------------------------------------------------------------

    def source_file(self) -> Path:
        """The SQuAD or HotpotQA file: --data itself, or the file of this subset inside the --data directory."""
        names = FILES[self.subset]
        if self.data is None:
            raise UsageError(
                f"ruler_qa:{self.subset} reads local files only: pass --data {names[0]} "
                f"({'SQuAD v2.0 dev' if self.subset == 'qa_1' else 'HotpotQA dev distractor'}) or a directory "
                "holding it"
            )
        path = Path(self.data).expanduser()
        if path.is_file():
            if path.suffix.lower() != ".json":
                raise UsageError(
                    f"cannot read {path}: ruler_qa:{self.subset} reads a .json file ({names[0]})"
                )
            return path
        if not path.is_dir():
            raise UsageError(f"--data {self.data}: no such file or directory")
        for name in names:
            if (path / name).is_file():
                return path / name
        raise UsageError(
            f"--data {self.data} holds none of the files ruler_qa:{self.subset} reads: {', '.join(names)}"
        )

    def corpus(self) -> QAData:
        path = self.source_file()
        stat = path.stat()
        data = _read(str(path.resolve()), SUBSETS[self.subset], stat.st_size, stat.st_mtime_ns)
        if not data.questions:
            raise UsageError(f"{path} holds no usable question for ruler_qa:{self.subset}")
        if len(data.documents) < 2:
            raise UsageError(f"{path} holds too few documents to draw distractors from")
        return data

    def rejected(self) -> list[tuple[str, str]]:
        return list(self.corpus().rejected)

    def cache_token(self) -> str:
        path = self.source_file()
        return stable_hash([str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns])

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        self.corpus()

    # --- samples ----------------------------------------------------------------------------------------

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        data = self.corpus()
        question = data.questions[seed % len(data.questions)]
        rng = random.Random(int(stable_hash([self.name, self.subset, seed]), 16))
        golds = [data.documents[i] for i in question.gold]
        rng.shuffle(golds)  # RULER shuffles gold and distractor documents together
        turn = Turn(question=question.question, answers=question.answers, answer_prefix=ANSWER_PREFIX)
        pool, estimate = self._distractors(backend, data, question, rng, length, turn)
        draws = [rng.random() for _ in golds]
        span = max(estimate, len(golds))
        for _ in range(6):
            positions = _positions(draws, span) if span > len(golds) else list(range(len(golds)))
            sample = self.make_sample(
                backend,
                length=length,
                depth=None,
                seed=seed,
                template=TEMPLATE,
                turns=[turn],
                source=GeneratedUnits(_stream(golds, positions, pool), name="ruler-qa-documents"),
                metadata={
                    "subset": self.subset,
                    "dataset": SUBSETS[self.subset],
                    "question_ref": question.ref,
                    "gold_documents": [p + 1 for p in positions],
                },
                evidence=list(question.evidence),
            )
            units = sample.metadata["units"]
            if positions[-1] < units:
                return dataclasses.replace(sample, metadata={**sample.metadata, "documents": units})
            # The documents that fitted fell short of where a gold document was put: put them nearer the start.
            span = max(len(golds), min(span - 1, units - 1))
        raise UsageError(
            f"{self.label()}: length {length} is too short to hold the question's {len(golds)} gold "
            "document(s); ask for a longer length"
        )

    def _distractors(
        self, backend: Backend, data: QAData, question: Question, rng: random.Random, length: int, turn: Turn
    ) -> tuple[list[str], int]:
        """Distractor documents in stream order, and about how many documents (gold included) fill the length.

        RULER takes the question's related documents first, then others at random, and shuffles the lot: the
        first documents the length holds are taken that way and shuffled; the rest follow at random.
        """
        gold = set(question.gold)
        related = [i for i in question.related if i not in gold]
        others = [i for i in range(len(data.documents)) if i not in gold and i not in set(related)]
        rng.shuffle(related)
        rng.shuffle(others)
        ranked = [data.documents[i] for i in related + others]
        messages = [{"role": "user", "content": TEMPLATE.format(context="", question=turn.question)}]
        fixed = backend.count_tokens(backend.render(messages, turn.answer_prefix))
        golds = sum(count_many(backend, [data.documents[i] for i in question.gold]))
        budget = length - self.max_new_tokens - fixed - golds
        fitting, used, full = 0, 0, False
        while not full and fitting < len(ranked):
            for count in count_many(backend, ranked[fitting : fitting + 64]):
                full = used + count + 4 > budget  # 4: about the tokens of a "Document n:" header
                if full:
                    break
                used += count + 4
                fitting += 1
        if not full and ranked:  # the file is smaller than the length: documents repeat
            per = max(1, used // max(1, fitting))
            fitting = max(fitting, budget // per)
        head = min(len(ranked), fitting + 2)
        first = ranked[:head]
        rng.shuffle(first)
        if not ranked:
            raise UsageError(f"{self.label()}: the file holds no document besides the question's own")
        return first + ranked[head:], fitting + len(question.gold)


def _positions(draws: list[float], span: int) -> list[int]:
    """Distinct, increasing document positions for the gold documents, spread over ``span`` places."""
    positions: list[int] = []
    for draw in sorted(draws):
        place = int(draw * span)
        positions.append(place if not positions else max(place, positions[-1] + 1))
    return positions


def _stream(golds: list[str], positions: list[int], pool: list[str]):
    """The document at each stream position: golds at their positions, distractors (cycling) in between;
    positions before the stream hold plain distractor text, the excerpt that tops up the last tokens."""
    at = dict(zip(positions, golds, strict=True))

    def make(i: int) -> str:
        if i < 0:
            return "\n\n" + pool[i % len(pool)]
        if i in at:
            return _document(i + 1, at[i])
        before = bisect.bisect_left(positions, i)
        return _document(i + 1, pool[(i - before) % len(pool)])

    return make

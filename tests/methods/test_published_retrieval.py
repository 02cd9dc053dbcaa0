"""LongBench v1's retrieval baselines and LongBench v2's no-context and RAG modes: published settings and prompts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import shared_tiny_backend

from longscope.core import GenerationRequest, Sample, Turn, UsageError
from longscope.haystack import split_sentences
from longscope.methods import make_method, parse_methods
from longscope.methods.prompt._chunks import chunk_context
from longscope.methods.prompt._rag import count_words, longbench_words
from longscope.tasks import make_task

V2_FIXTURE = Path(__file__).parent.parent / "fixtures" / "longbench_v2"


class Recorder:
    """A backend that keeps every request it is sent."""

    def __init__(self, backend):
        self.inner, self.sent = backend, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request: GenerationRequest):
        self.sent.append(request)
        return self.inner.generate(request)


@pytest.mark.parametrize(
    "spec,retriever,k,chunk,unit,order",
    [
        ("longbench-rag-bm25", "bm25", 3, 500, "words", "score"),  # BM25.sh chunk_size=500; pred.py top_k=3
        ("longbench-rag-contriever", "dense", 7, 200, "words", "score"),  # mContriever.sh 200; README top_k 7
        ("longbench-rag-openai", "dense", 3, 500, "words", "score"),  # openai_embedding.sh 500; top_k 3
        ("longbench_v2-rag", "dense", 8, 512, "tokens", "original"),  # 512-token chunks, sorted by c_idx
    ],
)
def test_each_preset_builds_its_published_settings(spec, retriever, k, chunk, unit, order):
    method = make_method(spec)
    assert (method.retriever, method.k, method.chunk, method.overlap, method.unit, method.order) == (
        retriever, k, chunk, 0, unit, order,
    )  # fmt: skip
    assert method.label() == spec and method.removes_nothing
    # A published setting can still be changed, and swept: every swept method keeps the others.
    changed = make_method(f"{spec}(k=2)")
    assert changed.label() == f"{spec}(k=2)" and (changed.chunk, changed.unit) == (chunk, unit)
    swept = parse_methods(f"{spec}(k=1..4)")
    assert [m.k for m in swept] == [1, 2, 4] and {(m.chunk, m.unit, m.order) for m in swept} == {
        (chunk, unit, order)
    }


def test_longbench_words_are_counted_as_its_splitter_counts_them():
    # Runs of letters, digits and underscores split at anything else; every CJK ideograph is a word of its own.
    assert longbench_words("Hello, world! x_y 3.5") == 5  # hello, world, x_y, 3, 5
    assert longbench_words("段落1：渔夫钓到一条大鱼。") == 11  # 段 落 1 | 渔 夫 钓 到 一 条 大 鱼: 3 + 8
    assert longbench_words("") == 0


def test_word_chunks_hold_at_most_the_size_in_words():
    text = "One two three. Four five. Six seven eight nine. Ten. Eleven twelve thirteen."
    chunks = chunk_context(text, count_words, 5, 0)
    assert [c.text.strip() for c in chunks] == [
        "One two three. Four five.", "Six seven eight nine. Ten.", "Eleven twelve thirteen.",
    ]  # fmt: skip
    assert [c.tokens for c in chunks] == [5, 5, 3]


def test_longbench_v1_sends_the_top_chunks_best_first_with_nothing_between_them():
    backend = shared_tiny_backend()
    context = (
        "The orchard was planted in spring. The vault door was painted green once. The miller counted sacks of "
        "flour. The secret code of the vault is 4471. Rivers carried snow to the sea."
    )
    sample = Sample(id="s", task="t", context=context, turns=(Turn("What is the code of the vault?", ("4471",)),),
                    template="{context}\n\n{question}", max_new_tokens=4)  # fmt: skip
    method = make_method("longbench-rag-bm25(chunk=8,k=2)")
    recorder = Recorder(backend)
    method.answer(sample, 0, sample.request(0), recorder)
    sentences = [s.strip() for s in split_sentences(context)]
    # Each sentence is a chunk of its own at 8 words. BM25 puts the sentence with both "code" and "vault" first
    # and the one with "vault" alone second, though it comes earlier in the context; LongBench joins them with
    # nothing added, so only the space each sentence opens with stands between them.
    assert recorder.sent[0].context == sentences[3] + " " + sentences[1]


def test_words_and_a_budget_are_refused_in_one_line():
    with pytest.raises(UsageError, match="counts tokens and these chunks count words"):
        make_method("longbench-rag-bm25:budget=1000")
    with pytest.raises(UsageError, match="unknown unit 'letters'"):
        make_method("rag-bm25(unit=letters)")


def _v2_sample(opening: str):
    """The fixture's LongBench v2 sample whose context starts with ``opening``, and its record."""
    task = make_task("longbench_v2").with_data(str(V2_FIXTURE))
    backend = shared_tiny_backend()
    samples = [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]
    rows = json.loads((V2_FIXTURE / "data.json").read_text(encoding="utf-8"))
    return next(s for s in samples if s.context.startswith(opening)), next(
        r for r in rows if r["context"].startswith(opening)
    )


def test_longbench_v2_no_context_sends_its_no_context_prompt():
    sample, row = _v2_sample("Paper one")
    recorder = Recorder(shared_tiny_backend())
    method = make_method("longbench_v2-no-context")
    method.check_sample(sample, recorder)
    method.answer(sample, 0, sample.request(0), recorder)
    [sent] = recorder.sent
    # prompts/0shot_no_context.txt filled in as pred.py fills it.
    expected = (
        f"What is the correct answer to this question: {row['question'].strip()}\nChoices:\n(A) {row['choice_A']}\n"
        f"(B) {row['choice_B']}\n(C) {row['choice_C']}\n(D) {row['choice_D']}\n\nWhat is the single, most likely "
        'answer choice? Format your response as follows: "The correct answer is (insert answer here)".'
    )
    assert sent.messages[-1]["content"] == expected and sent.context == ""


def test_longbench_v2_rag_sends_numbered_chunks_in_the_documents_order():
    sample, _ = _v2_sample("Turn 1")  # three sentences: "Turn 1: ... Turn 7: ... Turn 9: ..."
    recorder = Recorder(shared_tiny_backend())
    method = make_method(
        "longbench_v2-rag(k=2,chunk=4)"
    )  # every sentence is longer than 4 tokens: one per chunk
    method.check_sample(sample, recorder)
    generation = method.answer(sample, 0, sample.request(0), recorder)
    [sent] = recorder.sent
    content = sent.messages[-1]["content"]
    assert content.startswith(
        "Please read the following retrieved text chunks and answer the question below.\n\n<text>\n"
    )
    parts = re.findall(r"Retrieved chunk (\d): (.*?)(?=\n\nRetrieved chunk|$)", sent.context, flags=re.S)
    sentences = [s.strip() for s in split_sentences(sample.context)]
    assert [int(n) for n, _ in parts] == [1, 2] and generation.calls == 1
    positions = [sentences.index(text) for _, text in parts]
    assert positions == sorted(positions)  # the document's order, whatever the ranking was


def test_longbench_v2_modes_refuse_other_tasks_up_front():
    backend = shared_tiny_backend()
    sample = Sample(id="niah/s0", task="niah", context="A long text. With sentences.", turns=(Turn("q?", ("a",)),),
                    template="{context}\n{question}", max_new_tokens=4)  # fmt: skip
    for spec in ("longbench_v2-no-context", "longbench_v2-rag(k=1)"):
        with pytest.raises(UsageError, match="rewrites LongBench v2's own prompt and niah/s0"):
            make_method(spec).check_sample(sample, backend)

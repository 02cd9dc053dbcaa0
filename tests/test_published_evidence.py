"""Evidence read from published records (LongBench passage_retrieval, RULER QA, NeedleBench, Needle Threading) and
the measured difficulty plane on it, in rows and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_tiny_backend, tiny_backend

from longscope.measured_plane import context_units, evidence_units, measure_sample
from longscope.tasks import make_task

FIXTURES = Path(__file__).parent / "fixtures"


def _samples(spec: str, data: Path):
    task = make_task(spec).with_data(str(data))
    backend = shared_tiny_backend()
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def test_passage_retrieval_evidence_is_the_passage_the_answer_names():
    first, second, third = _samples("longbench:passage_retrieval_en", FIXTURES / "longbench")
    assert first.evidence == (
        "Paragraph 2: On a remote island, the lighthouse keeper kept a log of every storm.",
    )
    assert third.evidence == ("Paragraph 3: The children tied logs together to make a raft.",)
    # Three one-sentence paragraphs, one of them named: scope 1/3. BM25 shares "lighthouse", "keeper",
    # "remote" and "island" with the named one only (no stemming: "storms" is not "storm"), so it is ranked first
    # and there is no diffusion.
    plane = measure_sample(first, ("bm25",))
    assert plane.scope == pytest.approx(round(1 / 3, 4)) and plane.diffusion["bm25"] == (0.0,)
    zh, *_ = _samples("longbench:passage_retrieval_zh", FIXTURES / "longbench")
    assert zh.evidence == ("段落2：渔夫清晨出发，在湖上钓到一条大鱼。",)
    # A dataset whose records mark no evidence stays declared.
    [trec, *_] = _samples("longbench:trec", FIXTURES / "longbench")
    assert trec.evidence == () and measure_sample(trec, ("bm25",)) is None


def test_ruler_qa_evidence_is_the_answer_sentence_or_the_supporting_facts():
    backend = shared_tiny_backend()
    squad = make_task(f"ruler_qa:qa_1(data={FIXTURES / 'ruler_qa'})").build(backend, 1024, None, 0)
    # answer_start 79 falls in the paragraph's first sentence; the second does not hold the answer.
    assert squad.evidence == (
        "The harbour lighthouse at Kestrel Point was finished in 1842 by the stonemason Ada Fenwick.",
    )
    hotpot = make_task(f"ruler_qa:qa_2(data={FIXTURES / 'ruler_qa' / 'hotpotqa.json'})").build(
        backend, 1024, None, 0
    )
    # supporting_facts [["Mira Castell", 0], ["Vallon", 1]]: one sentence from each of two paragraphs.
    assert hotpot.evidence == (
        "Mira Castell (1890-1961) was a painter born in the town of Vallon.",
        "The river Ombre flows through the middle of the town.",
    )
    units = context_units(hotpot.context)
    assert len(evidence_units(units, hotpot.evidence)) == 2
    assert measure_sample(hotpot, ("bm25",)).scope == pytest.approx(round(2 / len(units), 4))


def test_needlebench_evidence_is_every_needle_asked_for():
    backend = shared_tiny_backend()
    data = FIXTURES / "needlebench"
    single = make_task(f"needlebench:single(data={data})").build(backend, 2048, 0.5, 0)
    assert len(single.evidence) == 1 and single.evidence[0] in single.context
    assert single.answers[0] in single.evidence[0]
    chain = make_task(f"needlebench:multi_reasoning(data={data},num_needles=3)").build(backend, 2048, 0.2, 0)
    # Three kinship links, all needed to walk from the last person to the eldest.
    assert len(chain.evidence) == 3 and all(link in chain.context for link in chain.evidence)
    units = context_units(chain.context)
    assert measure_sample(chain, ("bm25",)).scope == pytest.approx(round(3 / len(units), 4))


def test_needle_threading_units_are_pairs_and_the_thread_is_the_evidence():
    [sample] = [
        s
        for s in _samples("needle_threading:multi_threads", FIXTURES / "needle_threading")
        if s.id.endswith("/0")
    ]
    haystack = json.loads(sample.context)
    units = context_units(sample.context)
    assert len(units) == len(haystack) == 10 and all(unit in sample.context for unit in units)
    # Two threads of two pairs each: 9227.. -> ae97.. -> 923a.. and 18f1.. -> 907a.. -> 7f15.. (the gold values).
    assert set(sample.evidence) == {
        '"92276658-1e27-41c0-8a6a-63ec24ede6a4": "ae97ba94-d0ed-482f-8f6d-05584ef8aa38"',
        '"ae97ba94-d0ed-482f-8f6d-05584ef8aa38": "923a7369-94e3-4f91-9a61-dbe22e44158b"',
        '"18f135d2-5f55-4203-b018-50c5a38fd547": "907a70c3-1012-4037-b64c-e4228c38fb29"',
        '"907a70c3-1012-4037-b64c-e4228c38fb29": "7f150524-34b9-45df-9e77-69b10f4205b4"',
    }
    assert measure_sample(sample, ("bm25",)).scope == 0.4


def test_measured_coordinates_of_a_published_benchmark_reach_rows_and_report(tmp_path):
    from longscope import runner
    from longscope.config import RunConfig
    from longscope.report.commands import write_report
    from longscope.store import RunStore

    config = RunConfig(model="hf:tiny", tasks=["longbench:passage_retrieval_en", "longbench:trec(limit=1)"],
                       data=str(FIXTURES / "longbench"))  # fmt: skip
    runner.run(
        config, tmp_path / "run", backend=tiny_backend(), show_progress=False, plane_retrievers=("bm25",)
    )
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    retrieval = [r for r in rows if r.task.startswith("longbench:passage_retrieval_en")]
    assert len(retrieval) == 3 and all(r.measured_scope is not None for r in retrieval)
    assert all(r.measured_scope is None for r in rows if r.task.startswith("longbench:trec"))
    write_report(tmp_path / "run")
    points = {p["task"]: p for p in json.loads((tmp_path / "run" / "summary.json").read_text())["plane"]}
    measured = next(p for task, p in points.items() if "passage_retrieval" in task)
    assert measured["measured"]["scope"] == pytest.approx(
        sum(r.measured_scope for r in retrieval) / 3, abs=1e-3
    )
    declared = next(p for task, p in points.items() if "trec" in task)
    assert declared["measured"] is None  # declared only, and the page says so
    assert '<td class="num">declared only</td>' in (tmp_path / "run" / "report.html").read_text()


def test_retrieval_recall_on_a_published_record_reads_its_evidence():
    from longscope.methods import make_method
    from longscope.methods.prompt._rag import evidence_recall

    first, *_ = _samples("longbench:passage_retrieval_en", FIXTURES / "longbench")
    # Every paragraph is a chunk of its own at 4 tokens; BM25 picks the named one (see above): recall 1.
    method = make_method("rag-bm25(k=1,chunk=4,overlap=0)")
    assert method.answer(first, 0, first.request(0), shared_tiny_backend()).retrieval_recall == 1.0
    assert evidence_recall(first, 0, ["Paragraph 1: A baker opens a shop in the city."]) == 0.0

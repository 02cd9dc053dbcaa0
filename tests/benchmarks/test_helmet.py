"""HELMET from its published file formats: prompts, caps and metrics per dataset, demonstrations drawn as HELMET
draws them, NDCG@10 and the citation metrics on hand-worked cases, per-category averages, refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli, shared_tiny_backend, tiny_tokenizer
from judging.scripted import ScriptedJudge, grades_reply

from longscope.analysis.benchmarks import BenchmarkReport, benchmark_reports
from longscope.analysis.scores import ScoreCell
from longscope.core import Result, UsageError
from longscope.judging.entailment import NliEntailment, check_citations
from longscope.judging.judge import Judge
from longscope.judging.setup import grade_results
from longscope.scoring import score, score_with_details
from longscope.scoring.citations import citation_scores
from longscope.scoring.ranking import ndcg_at, parse_rankings
from longscope.tasks import make_task
from longscope.tasks.benchmarks.helmet import Helmet, shuffled, text_seed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helmet"
DATA = FIXTURES / "data"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _samples(spec: str, **params):
    task = make_task(spec).with_data(str(FIXTURES))
    backend = shared_tiny_backend()
    task.check(backend, 4096)
    return [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def _lines(rel: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / rel).read_text().splitlines() if line.endswith("}")]


# --- prompts, caps, metrics ---------------------------------------------------------------------------


def test_json_kv_in_helmets_completion_prompt_with_its_demonstrations():
    sample = _samples("helmet:json_kv(sample=all)")[0]  # in file order, not HELMET's draw
    record = _lines("json_kv/test_k1800_dep6.jsonl")[0]
    text = shared_tiny_backend().render(sample.messages(0), sample.turns[0].answer_prefix, sample.chat)
    demos = "".join(f"Key: {k}\nCorresponding value: {v}\n\n" for k, v in record["demos"])
    assert text.endswith(
        f"{record['context']}\n\nExtract the value corresponding to the specified key in the JSON object below."
        f"\n\n{demos}Key: {record['question']}\nCorresponding value:"
    )
    assert (sample.chat, sample.max_new_tokens, sample.metadata["metric"]) == (
        False,
        100,
        "helmet_substring_em",
    )
    # eval.py puts "Corresponding value:" back in front of a completion; the parsed value then matches
    assert score_with_details("helmet_substring_em", f" {record['answer']}\nKey: x", [record["answer"]],
                              sample.metadata)[0] == 1.0  # fmt: skip
    assert score("helmet_substring_em", " 9d2f6a3b", [record["answer"]], sample.metadata) == 0.0


def test_rag_prompt_demonstrations_are_drawn_as_datasets_shuffles_them():
    import datasets

    sample = _samples("helmet:kilt_nq")[0]
    record = _lines("kilt/nq-dev-multikilt_1000_k1000_dep6.jsonl")[0]
    demo_rows = _lines("kilt/nq-train-multikilt_1000_k3_dep6.jsonl")
    # HELMET's own draw: Dataset.shuffle(seed=sha256(id) % 2**31), duplicates of the question key dropped
    order = datasets.Dataset.from_list(demo_rows).shuffle(seed=text_seed(record["id"]))["id"]
    assert [demo_rows[i]["id"] for i in shuffled(len(demo_rows), text_seed(record["id"]))] == order
    drawn, seen = [], set()
    for row in (r for i in order for r in demo_rows if r["id"] == i):
        if row["id"] not in seen:
            seen.add(row["id"])
            drawn.append(row)
    demos = "".join(
        f"Document (Title: {d['ctxs'][0]['title']}): {d['ctxs'][0]['text']}\n\nQuestion: {d['question']}\n"
        f"Answer: {d['answers'][0]}\n\n"
        for d in drawn[:2]
    )
    passages = "\n\n".join(f"Document (Title: {c['title']}): {c['text']}" for c in record["ctxs"])
    assert sample.messages(0)[0]["content"] == (
        "Use the given documents to write a concise and short answer to the question. Write your answer in the "
        f"following format:\nAnswer: [answer]\n\n{demos}{passages}\n\nQuestion: {record['question']}"
    )
    assert sample.turns[0].answer_prefix == "\nAnswer:" and sample.metadata["stop"] == ["\n"]
    assert (sample.max_new_tokens, sample.chat) == (20, False)
    assert (
        score("helmet_substring_em", " The painter Mira Castell.", ["Mira Castell"], sample.metadata) == 1.0
    )


def test_popqa_keeps_only_the_less_popular_entities_and_a_bad_line_is_reported():
    assert [s.id for s in _samples("helmet:kilt_popqa")] == [
        "helmet:kilt_popqa/pq-1",
        "helmet:kilt_popqa/pq-3",
    ]
    task = Helmet(subset="kilt_nq", data=str(FIXTURES))
    [(ref, reason)] = task.rejected()
    assert ref == "nq-dev-multikilt_1000_k1000_dep6.jsonl:2" and reason.startswith("not valid JSON")
    assert len(task.records()) == 2


def test_rerank_prompt_gold_ranking_and_qrels():
    sample = _samples("helmet:msmarco_rerank_psg")[0]
    assert sample.answers == ("7 > 3 > 12 > 5",)
    assert sample.metadata["qrels"] == {"7": 3, "3": 1, "12": 0, "5": 0}
    assert sample.context.startswith("[ID: 7] Document: Lighthouse lamps burned all night.\n\n[ID: 3]")
    user = sample.messages(0)[0]["content"]
    assert user.startswith("You are provided with a list of documents, each indicated by their ID.")
    assert user.endswith("\n\nQuery: how long does a lighthouse lamp burn")
    assert len(re.findall(r"\nRanking: \d", user)) == 2  # two demonstrations with their gold rankings
    assert score("ndcg_at_10", " [7] > [3] > [12] > [5]", sample.answers, sample.metadata) == 1.0


def test_citation_subsets_score_correctness_and_leave_the_citation_metrics_to_a_judge():
    asqa = _samples("helmet:alce_asqa(sample=all)")[0]
    user = asqa.messages(0)[0]["content"]
    assert user.count("Instruction: Answer the question from the search results") == 3  # two demos + the task
    assert (
        "Question: When was the Kestrel Point light lit?\n\nDocument [1](Title: Kestrel Point Light):" in user
    )
    assert (asqa.chat, asqa.turns[0].answer_prefix, asqa.max_new_tokens) == (True, "", 300)
    got, details = score_with_details(
        "alce_str_em", "It was first lit in 1874 [1].", asqa.answers, asqa.metadata
    )
    assert got == 0.5 and details["citation_rec"].startswith("needs --judge")
    qampari = _samples("helmet:alce_qampari(sample=all)")[0]
    # citations are removed before the answers are compared ("Vallon [1]" is "Vallon"): 2 of 3 groups found
    got, details = score_with_details(
        "alce_qampari_rec_top5", "Vallon [1], St Ombre [2][3],\nParis.", qampari.answers, qampari.metadata
    )
    assert got == pytest.approx(2 / 3) and details["num_preds"] == 3.0
    assert details["qampari_prec"] == pytest.approx(2 / 3)


def test_infinitebench_subsets_and_the_judged_summary():
    qa, choice, summary = (
        _samples(f"helmet:{s}")[0] for s in ("infbench_qa", "infbench_choice", "infbench_sum")
    )
    assert qa.messages(0)[0]["content"].startswith(
        "You are given a story and a question. Answer the question"
    )
    assert (qa.max_new_tokens, qa.chat) == (10, True)
    assert choice.answers == ("B", "B. the lighthouse")
    assert (
        "Options:\nA. a farm\nB. the lighthouse\nC. a ship\nD. the town" in choice.messages(0)[0]["content"]
    )
    assert score("helmet_choice_em", "Answer: B", choice.answers, choice.metadata) == 1.0
    assert score("helmet_choice_em", "I think b. The lighthouse", choice.answers, choice.metadata) == 1.0
    assert score("helmet_choice_em", "C", choice.answers, choice.metadata) == 0.0
    assert summary.metadata["judge_prompt"] == "reference" and summary.max_new_tokens == 1200
    assert make_task("helmet:infbench_sum").needs_judge and not make_task("helmet:infbench_qa").needs_judge
    assert make_task("helmet:infbench_sum").metric == "judge"
    # helmet alone reads what a rule scores; the judged summary runs when named
    assert "infbench_sum" not in make_task("helmet").read_subsets() and not make_task("helmet").needs_judge


def test_many_shot_icl_balances_labels_and_hides_their_names_behind_numbers():
    samples = _samples("helmet:icl_trec_coarse(size=4k)")
    assert len(samples) == 3 and samples[0].metadata["shots"] == 200
    sample = samples[0]  # "What does CPR stand for ?", coarse label 0 (abbreviation)
    assert sample.messages(0)[0]["content"].startswith(
        'Use the provided mapping from the text to label to assign a label to the text. Only output "label: '
        '{label}" and nothing else. \n\n'
    )
    assert sample.messages(0)[0]["content"].endswith("\n\nWhat does CPR stand for ?")
    demos = [block.split("\nlabel: ") for block in sample.context.split("\n\n")]
    assert len(demos) == 200
    train = {r["text"]: r["coarse_label"] for r in _lines("icl/trec_coarse/train.jsonl")}
    shown = {}
    for text, label in demos:
        assert shown.setdefault(train[text], label) == label  # one number per class, the same everywhere
    assert sorted(shown.values()) == [str(n) for n in range(6)]  # a permutation of 0-5
    assert sample.answers == (shown[0],)  # the number the abbreviation class shows
    # balanced: 34 rounds of one text per class, each round shuffled, cut at 200 (33 full rounds and 2 more)
    for start in range(0, 198, 6):
        assert len({train[text] for text, _ in demos[start : start + 6]}) == 6
    assert (sample.chat, sample.max_new_tokens, sample.metadata["stop"]) == (False, 20, ["\n"])
    # the reply is read after "label:" only (put back in front of a completion)
    assert score("helmet_icl_em", f" {shown[0]}\nmore", sample.answers, sample.metadata) == 1.0
    assert score("helmet_icl_em", f"The label is {shown[0]}", sample.answers, sample.metadata) == 0.0
    [(ref, reason)] = Helmet(subset="icl_trec_coarse", size="4k", data=str(FIXTURES)).rejected()
    assert (ref, reason) == ("test.jsonl:4", "field 'coarse_label' should be a label number below 6")


def test_nlu_holds_out_a_tenth_as_datasets_train_test_split_does():
    import datasets

    rows = _lines("icl/nlu/train.jsonl")
    split = datasets.Dataset.from_list(rows).train_test_split(test_size=0.1, seed=42)
    samples = _samples("helmet:icl_nlu(size=4k)")
    # 21 lines: ceil(2.1) = 3 held out, in the order datasets' permutation puts them
    assert [s.turns[0].question for s in samples] == split["test"]["text"]
    sample = samples[0]
    assert (sample.metadata["shots"], sample.max_new_tokens, sample.metadata["category"]) == (250, 20, "ICL")
    demos = [block.split("\nlabel: ") for block in sample.context.split("\n\n")]
    shown_texts = {text for text, _ in demos}
    # demonstrations come from the nine tenths trained on, less the line whose label is not one of NLU's 68
    assert shown_texts == set(split["train"]["text"]) - {"open the blinds"}
    assert not shown_texts & set(split["test"]["text"])
    label_of = {r["text"]: r["label"] for r in rows}
    numbers = {label_of[text]: number for text, number in demos}
    assert len(set(numbers.values())) == 5 and all(0 <= int(n) < 68 for n in numbers.values())
    assert sample.answers == (numbers[label_of[sample.turns[0].question]],)


def test_an_icl_test_split_over_helmets_cap_is_cut_to_a_label_balanced_draw():
    import datasets

    from longscope.tasks.benchmarks import helmet

    rows = _lines("icl/trec_coarse/test.jsonl")
    assert (
        len(Helmet(subset="icl_trec_coarse", size="4k", data=str(FIXTURES)).records()) == 3
    )  # under 500: all
    # HELMET: the split shuffled as datasets shuffles it (seed 42), then balance_labels(2, seed 42); the line
    # without a valid label is reported before the draw
    valid = [r for r in rows if r["coarse_label"] < 6]
    order = datasets.Dataset.from_list(valid).shuffle(seed=42)["text"]
    by_text = {r["text"]: r for r in valid}
    drawn = helmet.balance_labels([by_text[t] for t in order], "coarse_label", 2, 42)
    task = Helmet(subset="icl_trec_coarse", size="4k", data=str(FIXTURES), sample=2)
    kept = [r.data["text"] for r in task.records()]
    assert kept == [r["text"] for r in drawn] and len(kept) == 2
    assert len(task.rejected()) == 1


def test_narrativeqa_and_multi_lexsum_in_helmets_prompts_graded_by_the_judge():
    nqa = _samples("helmet:narrativeqa(sample=all)")
    assert len(nqa) == 2  # the third record has no answers: reported, not run
    [(ref, reason)] = Helmet(subset="narrativeqa", data=str(FIXTURES)).rejected()
    assert ref.endswith("test.jsonl:3") and "answers" in reason
    first = nqa[0]
    user = first.messages(0)[0]["content"]
    train = _lines("narrativeqa/train.jsonl")
    drawn = [train[i] for i in shuffled(len(train), text_seed("Who kept the light at Kestrel Point?"))][:2]
    demo = "\n\n".join(f"Question: {d['question']['text']}\nAnswer: {d['answers'][0]['text']}" for d in drawn)
    assert user == (
        "You are given a story, which can be either a novel or a movie script, and a question. Answer the "
        "question as concisely as you can, using a single phrase if possible.\n\nFor example:\n\n"
        f"{demo}\n\nNow, use the following story to answer the question:\n\n{first.context}\n\n"
        "Question: Who kept the light at Kestrel Point?"
    )
    assert first.context.startswith("The keeper of Kestrel Point was a woman named Ada Fenwick.")
    assert first.answers == ("Ada Fenwick", "the keeper Ada")
    assert (first.chat, first.max_new_tokens, first.metadata["judge_prompt"]) == (True, 100, "reference")
    assert first.metadata["category"] == "LongQA"

    cases = _samples("helmet:multi_lexsum(shots=1)")
    assert [c.id.rsplit("/", 1)[1] for c in cases] == ["CR-0101", "CR-0103"]  # CR-0102 has no short summary
    case = cases[0]
    pool = [r for r in _lines("multi_lexsum/train.jsonl") if r["summary/short"]]
    [example] = [pool[i] for i in shuffled(len(pool), text_seed("CR-0101"))][:1]
    assert case.messages(0)[0]["content"].endswith(
        "the background, the parties involved, and the outcomes of the case.\n\nExample summaries:\n\n"
        f"Summary: {example['summary/short']}\n\nNow, write a summary of the following legal documents.\n"
        "Legal documents:\nCOMPLAINT. Residents of Port Sable sued the county over the closing of the only "
        "polling place.\n\nORDER. The court ordered the county to open a second polling place before the "
        "election.\n\nNow please summarize the case."
    )
    assert case.answers[0].startswith("Residents sued Port Sable county")
    assert (case.chat, case.max_new_tokens, case.metadata["category"]) == (True, 400, "Summ")
    assert make_task("helmet:multi_lexsum").needs_judge and make_task("helmet:narrativeqa").metric == "judge"
    assert not {"narrativeqa", "multi_lexsum"} & set(make_task("helmet").read_subsets())
    assert "icl_nlu" in make_task("helmet").read_subsets()


# --- NDCG@10 and the citation metrics, hand-worked --------------------------------------------------------


def test_ndcg_at_10_by_hand():
    relevance = {"7": 3, "3": 1, "12": 0, "5": 0}
    # ranking 3, 7, 12: DCG = 1/log2(2) + 3/log2(3) = 2.8928; ideal 3/log2(2) + 1/log2(3) = 3.6309
    assert ndcg_at(10, parse_rankings("Ranking: [3] > [7] > [12]"), relevance) == pytest.approx(
        (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    )
    assert ndcg_at(10, parse_rankings("ID7 > ID7 > ID3"), relevance) == 1.0  # a repeat keeps its first place
    assert ndcg_at(10, parse_rankings("none of them"), relevance) == 0.0
    assert parse_rankings("ID: 5, then 2 > 4 > 1") == {"2": 3, "4": 2, "1": 1}  # the longest chain wins
    # only ten places count: the one relevant document ranked eleventh scores nothing
    eleven = " > ".join(str(i) for i in range(1, 12))
    assert ndcg_at(10, parse_rankings(eleven), {"11": 2}) == 0.0
    assert ndcg_at(10, parse_rankings(eleven), {"10": 2}) == pytest.approx(1 / math.log2(11))


DOCS = [
    {"title": "Kestrel Point Light", "text": "First lit in 1874."},
    {"title": "Ada Fenwick", "text": "Kept the light."},
    {"title": "Port Sable", "text": "Has a stone pier."},
]
NEEDS = {"first lit": "Kestrel Point Light", "Ada Fenwick kept": "Ada Fenwick", "stone pier": "Port Sable"}


def oracle(passage: str, claim: str) -> bool:
    """Entailed when the passage holds the one document the claim's fact comes from."""
    return any(key in claim and f"Title: {title}\n" in passage for key, title in NEEDS.items())


def test_citation_recall_and_precision_by_hand():
    output = (
        "The light was first lit in 1874 [1]. Ada Fenwick kept it for years [1][2]. There is a stone pier "
        "nearby [3][2]. It was automated in 1961."
    )
    # claims 1-3 are supported by what they cite, the 4th cites nothing: recall 3/4. Citations: [1] needed;
    # of [1][2], [1] neither supports alone nor is needed; of [3][2], [2] likewise: 3 of 5 needed.
    assert citation_scores(output, DOCS, oracle) == (0.75, 0.6)
    # an unsupported claim with two citations puts both in the denominator only; one citing a missing
    # document counts 0 and adds no citation
    assert citation_scores("Ada Fenwick kept it well [1][3]. The stone pier stands [9].", DOCS, oracle) == (
        0.0,
        0.0,
    )
    # QAMPARI: each comma-separated answer is a claim prefixed with the question
    seen: list[str] = []

    def recording(passage: str, claim: str) -> bool:
        seen.append(claim)
        return "[" not in claim

    assert citation_scores(
        "Vallon [1], Merle [2].", DOCS, recording, question="Which towns?", qampari=True
    ) == (
        1.0,
        1.0,
    )
    assert seen == ["Which towns? Vallon", "Which towns? Merle"]
    assert citation_scores("", DOCS, oracle) is None


def _cited_row(sample, prediction: str) -> Result:
    details = json.dumps(score_with_details("alce_str_em", prediction, sample.answers, sample.metadata)[1])
    return Result(key="k", sample_id=sample.id, task=sample.task, length=0, depth=None, seed=0, turn=0,
                  status="ok", prediction=prediction, score=0.5, details=details)  # fmt: skip


def _entailment_reply(messages: list[dict[str, str]]) -> str:
    """A judge that reads its entailment prompt: the claim is supported when a passage holds its fact."""
    text = messages[-1]["content"]
    if "<passages>" not in text:  # the judge's up-front check that it answers
        return "OK"
    passages = text.split("<passages>\n", 1)[1].split("\n</passages>", 1)[0]
    claim = text.split("<claim>\n", 1)[1].split("\n</claim>", 1)[0]
    facts = {"1874": "first lit in 1874", "Ada Fenwick": "Title: Ada Fenwick\n"}
    supported = any(key in claim and fact in passages for key, fact in facts.items())
    return grades_reply(1 if supported else 0)


def test_citation_recall_and_precision_by_the_runs_judge_as_entailment_judge():
    sample = _samples("helmet:alce_asqa")[0]
    assert [d["title"] for d in sample.metadata["citation_docs"]] == ["Kestrel Point Light", "Ada Fenwick",
                                                                      "Port Sable"]  # fmt: skip
    reply = "It was first lit in 1874 [1]. Ada Fenwick kept it [1][2]. It has a brass bell [3]."
    backend = ScriptedJudge(_entailment_reply)
    judge = Judge(backend, uri="scripted")
    [row] = check_citations(judge, sample, [_cited_row(sample, reply)])
    details = json.loads(row.details)
    # claim 1: [1] supports it (recall, 1 needed citation); claim 2: [1][2] jointly support it, [2] alone
    # does and [1] is not needed (1 of 2); claim 3: [3] does not support it (recall 0, its citation counted)
    assert (details["citation_rec"], details["citation_prec"]) == (pytest.approx(2 / 3), 0.5)
    assert row.score == 0.5 and details["entailment_by"] == judge.identity  # correctness stays the score
    # calls: 1 + (joint, [1] alone, [2] as "the others") + 1; [2] alone again comes from the judge's cache
    assert (row.judge_calls, len(backend.requests)) == (5, 5)
    assert backend.requests[0].messages[0]["content"].startswith("You check whether passages support a claim")
    # the run's flow: grade_results adds them for a sample that cites, without a judged metric
    item = SimpleNamespace(sample=sample)
    assert (
        json.loads(grade_results(judge, item, [_cited_row(sample, reply)])[0].details)["citation_prec"] == 0.5
    )
    # no judge and no NLI model: the rows say why the metrics are missing
    [untouched] = grade_results(None, item, [_cited_row(sample, reply)])
    assert json.loads(untouched.details)["citation_rec"].startswith("needs --judge or the task's nli=")

    def down(messages):
        raise ConnectionError("judge offline")

    offline = Judge(ScriptedJudge(down, name="judge-down"), uri="down")
    [failed] = check_citations(offline, sample, [_cited_row(sample, reply)])
    assert json.loads(failed.details)["citation_rec"].startswith("entailment not judged: judge failed")
    assert failed.status == "ok" and failed.score == 0.5


@pytest.mark.slow  # two real runs on the tiny model
def test_a_run_with_a_judge_fills_in_citation_metrics_and_one_without_says_why(tmp_path):
    from longscope import runner
    from longscope.config import RunConfig
    from longscope.store import RunStore

    def details_of(judge_uri, judge_backend, out):
        cfg = RunConfig.from_options(tasks="helmet:alce_asqa(max_new_tokens=6,limit=1)", data=str(FIXTURES),
                                     judge=judge_uri)  # fmt: skip
        runner.run(cfg, out, backend=shared_tiny_backend(), judge_backend=judge_backend, show_progress=False,
                   plane_retrievers=())  # fmt: skip
        store = RunStore.open(out, create=False)
        try:
            [row] = store.results()
        finally:
            store.close()
        return row, json.loads(row.details)

    judge = ScriptedJudge(_entailment_reply, name="judge-e")
    row, judged = details_of("openai:http://127.0.0.1:9/v1#judge-e", judge, tmp_path / "judged")
    assert row.status == "ok" and judged["entailment_by"] == "scripted:judge-e@test"
    # the tiny model's reply cites nothing that exists, so whatever it claims is unsupported
    assert judged["citation_rec"] in (0.0, "the reply makes no claim to check")
    row, plain = details_of(None, None, tmp_path / "plain")
    assert plain["citation_rec"].startswith("needs --judge") and "entailment_by" not in plain


def _tiny_nli(folder: Path, labels: dict[int, str], winner: int) -> Path:
    """A tiny random BERT classifier whose bias makes label ``winner`` the most likely, saved as a folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = tiny_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, id2label=labels, label2id={v: k for k, v in labels.items()})  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0 if i == winner else 0.0 for i in range(len(labels))]))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tiny_true(folder: Path) -> Path:
    """A tiny random T5 saved as a folder, standing in for TRUE's T5 NLI model."""
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = tiny_tokenizer()
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                      decoder_start_token_id=tokenizer.pad_token_id or 0)  # fmt: skip
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_local_nli_model_judges_citations_without_a_judge(tmp_path):
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    agrees = _tiny_nli(tmp_path / "agrees", labels, winner=1)
    disagrees = _tiny_nli(tmp_path / "disagrees", labels, winner=2)
    sample = _samples(f"helmet:alce_asqa(nli={agrees})")[0]
    assert sample.metadata["nli_model"] == str(agrees.resolve())
    reply = "It was first lit in 1874 [1]. Ada Fenwick kept it [1][2]."
    [row] = grade_results(None, SimpleNamespace(sample=sample), [_cited_row(sample, reply)])
    details = json.loads(row.details)
    # every check entailed: both claims supported; of [1][2] each supports alone, so all 3 citations count
    assert (details["citation_rec"], details["citation_prec"]) == (1.0, 1.0)
    assert details["entailment_by"] == f"nli:{agrees.resolve()}" and row.judge is None
    refusing = dataclasses.replace(sample, metadata={**sample.metadata, "nli_model": str(disagrees)})
    details = json.loads(check_citations(None, refusing, [_cited_row(sample, reply)])[0].details)
    assert (details["citation_rec"], details["citation_prec"]) == (0.0, 0.0)
    assert NliEntailment(str(agrees))("Title: A\nanything", "a claim") is True
    with pytest.raises(UsageError, match="helmet: nli=.* is not a model folder"):
        make_task(f"helmet:alce_asqa(nli={tmp_path / 'missing'})")
    # a TRUE-style sequence-to-sequence model: asked "premise: P hypothesis: H", entailed when it writes "1"
    true_like = _tiny_true(tmp_path / "true")
    nli = NliEntailment(str(true_like))
    asked = []

    def writes(text):
        def generate(input_ids, **_):
            asked.append(nli.tokenizer.decode(input_ids[0]))
            return nli.tokenizer(text, return_tensors="pt").input_ids

        return generate

    nli.model.generate = writes("1")
    assert nli("Title: A\nfirst lit in 1874", "It was lit in 1874.") is True
    assert asked == ["premise: Title: A\nfirst lit in 1874 hypothesis: It was lit in 1874."]
    nli.model.generate = writes("0")
    assert nli("Title: A\nfirst lit in 1874", "It was lit in 1874.") is False
    with pytest.raises(UsageError, match="name no single entailment label"):
        NliEntailment(str(_tiny_nli(tmp_path / "unlabelled", {0: "yes", 1: "no"}, winner=0)))


# --- categories, refusals, a run --------------------------------------------------------------------------


def test_per_category_averages_as_helmet_collects_them():
    cells = {
        "json_kv": ScoreCell(scores=[100.0, 0.0]),
        "ruler_niah_mv": ScoreCell(scores=[50.0]),
        "kilt_nq": ScoreCell(scores=[30.0, 40.0]),
        "kilt_popqa": ScoreCell(scores=[80.0]),
    }
    report = BenchmarkReport("helmet", {}, {"dataset": cells})
    assert report.published_scores() == {
        "json_kv": 50.0,
        "kilt_nq": 35.0,
        "kilt_popqa": 80.0,
        "ruler_niah_mv": 50.0,
    }
    categories = report.category_scores()
    # Recall = mean(50, 50); RAG = mean(35, 80); the overall score is the mean of the scored categories
    assert categories["Recall"] == 50.0 and categories["RAG"] == 57.5 and categories["Cite"] is None
    assert categories["average"] == 53.8  # (50 + 57.5) / 2 = 53.75, printed with one decimal
    # the NLU set counts in ICL, NarrativeQA in LongQA and Multi-LexSum in Summ, as collect_results.py has them
    cells.update({"icl_nlu": ScoreCell(scores=[60.0]), "icl_banking77": ScoreCell(scores=[20.0]),
                  "narrativeqa": ScoreCell(scores=[25.0]), "infbench_qa": ScoreCell(scores=[15.0]),
                  "multi_lexsum": ScoreCell(scores=[40.0])})  # fmt: skip
    categories = BenchmarkReport("helmet", {}, {"dataset": cells}).category_scores()
    assert (categories["ICL"], categories["LongQA"], categories["Summ"]) == (40.0, 20.0, 40.0)
    assert categories["average"] == 41.5  # (50 + 57.5 + 40 + 20 + 40) / 5
    assert BenchmarkReport("longbench", {}, {"dataset": cells}).category_scores() is None


def test_cite_averages_correctness_with_citation_recall_and_precision_where_judged():
    def row(seed: int, score: float, details: dict) -> Result:
        return Result(key=f"k{seed}", sample_id=f"s{seed}", task="helmet:alce_asqa", length=0, depth=None,
                      seed=seed, turn=0, status="ok", score=score, details=json.dumps(details))  # fmt: skip

    needs = "needs --judge or the task's nli=MODEL_DIR"
    rows = [
        row(0, 0.5, {"citation_rec": 1.0, "citation_prec": 0.2}),
        row(1, 1.0, {"citation_rec": needs, "citation_prec": needs}),  # not judged: in the correctness only
    ]
    meta = {f"s{i}": {"benchmark": "helmet", "dataset": "alce_asqa"} for i in range(2)}
    [report] = benchmark_reports(rows, meta)
    assert report.published_scores() == {
        "alce_asqa": 75.0,
        "alce_asqa citation_prec": 20.0,
        "alce_asqa citation_rec": 100.0,
    }
    # HELMET's Cite: the mean of str_em, citation_rec and citation_prec = (75 + 100 + 20) / 3
    assert report.category_scores()["Cite"] == 65.0
    [unjudged] = benchmark_reports(rows[1:], meta)
    assert unjudged.category_scores()["Cite"] == 100.0


# --- which records run: HELMET's max_test_samples draw ------------------------------------------------------


def _helmet_folder(root: Path, count: int) -> dict[str, list[dict]]:
    """A HELMET data folder of ``count`` small records per dataset (the shapes of its files), written under
    ``root``; returns the rows written, by dataset."""
    ctx = [{"id": "d1", "title": "Vallon", "text": "Vallon is a town in Arden.", "has_answer": True}]
    rows = {
        "json_kv": [{"id": f"kv{i}", "context": "{}", "question": f"k{i}", "answer": f"v{i}", "num_kvs": 1}
                    for i in range(count)],
        "ruler_niah_mv": [{"index": i, "id": f"r{i}", "context": "hay", "query": f"q{i}",
                           "type_needle_v": "numbers", "outputs": [str(i)]} for i in range(count)],
        # no ids, and every twelfth question asked twice: the draw is by question and keeps both
        "kilt_nq": [{"question": f"q{i % (count - count // 12)}", "answers": ["a"], "ctxs": ctx}
                    for i in range(count)],
        # the popular entities (every third) are dropped before the draw
        "kilt_popqa": [{"id": f"pq{i}", "question": f"q{i}", "answers": ["a"], "ctxs": ctx,
                        "s_pop": 5000 if i % 3 == 0 else 10 + i} for i in range(count)],
        "msmarco_rerank_psg": [{"qid": f"{1000 + (i * 7919) % 9973}", "query": f"q{i}",
                                "ctxs": [{"id": "p1", "text": "t", "label": 1}]} for i in range(count)],
        "alce_asqa": [{"id": f"a{i}", "question": f"q{i}", "qa_pairs": [{"short_answers": ["x"]}],
                       "docs": [{"title": "t", "text": "x"}]} for i in range(count)],
        "infbench_qa": [{"id": i, "context": "book", "input": f"q{i}", "answer": ["a"], "options": []}
                        for i in range(count)],
        "narrativeqa": [{"document": {"id": f"doc{i // 3}", "text": "story"}, "question": {"text": f"q{i}"},
                         "answers": [{"text": "a"}]} for i in range(count)],
        # every fifth case has no short summary (HELMET drops it before the draw)
        "multi_lexsum": [{"id": f"CR-{i}", "sources": ["doc"], "summary/short": None if i % 5 == 0 else "s"}
                         for i in range(count)],
    }  # fmt: skip
    for dataset, records in rows.items():
        path = root / Helmet(subset=dataset).data_files()[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(records))
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return rows


def _drawn_ids(dataset: str, root: Path, **params) -> list:
    task = Helmet(subset=dataset, data=str(root), **params)
    return [_row_id(dataset, record.data) for record in task.records()]


def _row_id(dataset: str, row: dict):
    if dataset == "narrativeqa":
        return row["question"]["text"]
    if dataset == "msmarco_rerank_psg":
        return row["query"]
    if dataset == "kilt_nq":
        return row["question"]
    return row["id"]


def test_each_dataset_draws_the_records_helmets_loaders_draw(tmp_path):
    import datasets

    written = _helmet_folder(tmp_path, 130)

    def shuffled_first(rows: list[dict], dataset: str, wanted: int = 100) -> list:
        # data.py: data.shuffle(seed=42).select(range(min(max_test_samples, len(data))))
        table = datasets.Dataset.from_list(rows)
        return [_row_id(dataset, r) for r in table.shuffle(seed=42).select(range(min(wanted, len(table))))]

    def by_key(rows: list[dict], dataset: str, key: str) -> list:
        # load_qa / load_msmarco_rerank after eval.py's random.seed(42): keys sampled, then filtered in order
        table = datasets.Dataset.from_list(rows)
        state = random.getstate()
        try:
            random.seed(42)
            keys = random.sample(sorted(set(table[key])), min(100, len(set(table[key]))))
        finally:
            random.setstate(state)
        return [_row_id(dataset, r) for r in table.filter(lambda x: x[key] in keys)]

    for dataset in ("json_kv", "ruler_niah_mv", "alce_asqa", "infbench_qa", "narrativeqa"):
        assert _drawn_ids(dataset, tmp_path) == shuffled_first(written[dataset], dataset), dataset
    nq = _drawn_ids("kilt_nq", tmp_path)
    assert nq == by_key(written["kilt_nq"], "kilt_nq", "question")
    assert len(set(nq)) == 100 and len(nq) > 100  # 100 questions drawn; a repeated one brings both records
    popular = [r for r in written["kilt_popqa"] if r["s_pop"] < 1000]
    assert _drawn_ids("kilt_popqa", tmp_path) == by_key(popular, "kilt_popqa", "id")
    rerank = _drawn_ids("msmarco_rerank_psg", tmp_path)
    assert rerank == by_key(written["msmarco_rerank_psg"], "msmarco_rerank_psg", "qid") and len(rerank) == 100
    summarised = [r for r in written["multi_lexsum"] if r["summary/short"] is not None]  # 104 of 130
    assert _drawn_ids("multi_lexsum", tmp_path) == shuffled_first(summarised, "multi_lexsum")
    # a number draws that many the same way; "all" keeps the file as it is
    assert _drawn_ids("json_kv", tmp_path, sample=7) == shuffled_first(written["json_kv"], "json_kv", 7)
    assert _drawn_ids("json_kv", tmp_path, sample="all") == [f"kv{i}" for i in range(130)]
    # --limit takes the first N of the draw
    assert _drawn_ids("json_kv", tmp_path, limit=3) == shuffled_first(written["json_kv"], "json_kv", 3)


def test_small_files_are_drawn_as_helmet_draws_them_and_bad_lines_are_reported_first(tmp_path):
    import datasets

    written = _helmet_folder(tmp_path, 60)
    # 60 records: HELMET still shuffles a file under max_test_samples, except Multi-LexSum, kept as it is
    order = datasets.Dataset.from_list(written["json_kv"]).shuffle(seed=42)["id"]
    assert _drawn_ids("json_kv", tmp_path) == order and order != sorted(order, key=lambda i: int(i[2:]))
    kept = [r["id"] for r in written["multi_lexsum"] if r["summary/short"] is not None]
    assert _drawn_ids("multi_lexsum", tmp_path) == kept
    # 55 distinct questions, under 100: every record kept, in file order
    assert _drawn_ids("kilt_nq", tmp_path) == [r["question"] for r in written["kilt_nq"]]
    # a bad line is reported and the draw is over the valid records
    path = tmp_path / Helmet(subset="json_kv").data_files()[0]
    lines = path.read_text().splitlines()
    lines[4] = json.dumps({"id": "kv-bad", "context": "{}", "question": "k"})  # no answer
    path.write_text("\n".join(lines) + "\n")
    task = Helmet(subset="json_kv", data=str(tmp_path))
    valid = [r for r in written["json_kv"] if r["id"] != "kv4"]
    assert [r.data["id"] for r in task.records()] == datasets.Dataset.from_list(valid).shuffle(seed=42)["id"]
    [(ref, reason)] = task.rejected()
    assert ref.endswith("test_k1800_dep6.jsonl:5") and "answer" in reason


def test_the_draws_by_hand():
    from longscope.tasks.benchmarks._helmet_draw import draw_by_key, draw_shuffled, draw_shuffled_if_over

    # numpy's default_rng(42).permutation(5) is [4, 2, 3, 1, 0] (datasets' shuffle(seed=42) of five rows)
    assert draw_shuffled(5, 3) == [4, 2, 3]
    assert draw_shuffled_if_over(5, 5) == [0, 1, 2, 3, 4] and draw_shuffled_if_over(5, 4) == [4, 2, 3, 1]
    # random.Random(42).sample(["a", "b", "c", "d"], 2) is ["a", "d"]: both "a" records, then "d", in file order
    assert draw_by_key(["d", "a", "c", "a", "b"], 2) == [0, 1, 3]
    with pytest.raises(UsageError, match="sample must be"):
        make_task("helmet:json_kv(sample=0)")
    assert make_task("helmet:json_kv(sample=25)").label() == "helmet:json_kv(sample=25)"


def test_alce_demonstrations_are_the_draws_load_alce_makes_mapping_the_file(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    # seven records and five demonstrations, so that the draws differ from record to record
    prompt = json.loads((FIXTURES / "prompts/asqa_revised.json").read_text())
    prompt["demos"] = [{**prompt["demos"][i % 2], "question": f"Demo question {i}?"} for i in range(5)]
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/asqa_revised.json").write_text(json.dumps(prompt))
    record = json.loads((DATA / "alce/asqa_eval_gtr_top2000.json").read_text())[0]
    path = tmp_path / "alce/asqa_eval_gtr_top2000.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps([{**record, "id": f"asqa-{i}", "question": f"Question {i}?"} for i in range(7)])
    )
    population = len(prompt["demos"])
    # HELMET: eval.py's random.seed(42), then load_alce's load_dataset and map, one random.sample per record
    state = random.getstate()
    try:
        random.seed(42)
        table = datasets.load_dataset("json", data_files=str(path), cache_dir=str(tmp_path / "cache"))[
            "train"
        ]
        mapped = table.map(
            lambda r: {"picked": random.sample(range(population), 2)}, load_from_cache_file=False
        )
    finally:
        random.setstate(state)
    helmet_demos = {r["id"]: [prompt["demos"][i]["question"] for i in r["picked"]] for r in mapped}
    task = Helmet(subset="alce_asqa", data=str(tmp_path))
    backend = shared_tiny_backend()
    samples = [task.build(backend, *point) for point in task.work([], [], [])]
    assert len(samples) == 7 and len({tuple(d) for d in helmet_demos.values()}) > 3
    for sample in samples:
        user = sample.messages(0)[0]["content"]
        shown = re.findall(r"Question: (.*)\n", user)[:-1]  # the demonstrations' questions, then the record's
        assert shown == helmet_demos[sample.id.rsplit("/", 1)[1]]


def test_rerank_demonstrations_leave_out_every_test_query_when_helmet_does(tmp_path):
    import datasets

    def row(qid: str) -> dict:
        return {"qid": qid, "query": f"query {qid}", "ctxs": [{"id": f"{qid}a", "text": "t", "label": 1},
                                                             {"id": f"{qid}b", "text": "u", "label": 0}]}  # fmt: skip

    tests = [row(f"t{i}") for i in range(5)]
    (tmp_path / "msmarco").mkdir()
    (tmp_path / "msmarco/test_reranking_data_k1000_dep3.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in tests)
    )
    demo_path = tmp_path / "msmarco/test_reranking_data_k10_dep3.jsonl"

    def helmet_demos(demo_rows: list[dict], qid: str) -> list[str]:
        # load_msmarco_rerank: the filter by the test set's size, the shuffle by the query's seed, the first two
        # distinct query ids
        demos = datasets.Dataset.from_list(demo_rows)
        if len(demos) > 2 * len(tests):
            left_out = {t["qid"] for t in tests}
            demos = demos.filter(lambda x: x["qid"] not in left_out)
        else:
            demos = demos.filter(lambda x: x["qid"] != qid)
        picked: list[str] = []
        for demo in demos.shuffle(seed=text_seed(qid)):
            if demo["qid"] not in picked and len(picked) < 2:
                picked.append(demo["qid"])
        return [f"query {q}" for q in picked]

    def shown(task: Helmet) -> dict[str, list[str]]:
        backend = shared_tiny_backend()
        samples = [task.build(backend, *point) for point in task.work([], [], [])]
        return {
            s.turns[0].question: re.findall(r"Query: (.*)\n", s.messages(0)[0]["content"]) for s in samples
        }

    # 12 demonstration rows, over twice the 5 test records: no test query is shown, one row is a repeat
    many = [row(q) for q in ("t0", "d1", "t1", "d2", "t2", "d3", "d3", "t3", "d4", "t4", "d5", "d6")]
    demo_path.write_text("".join(json.dumps(r) + "\n" for r in many))
    got = shown(Helmet(subset="msmarco_rerank_psg", data=str(tmp_path)))
    assert got == {t["query"]: helmet_demos(many, t["qid"]) for t in tests}
    assert not any(q.startswith("query t") for demos in got.values() for q in demos)
    # 8 rows, not over twice 5: only the record's own query is left out, other test queries may be shown
    few = many[:8]
    demo_path.write_text("".join(json.dumps(r) + "\n" for r in few))
    got = shown(Helmet(subset="msmarco_rerank_psg", data=str(tmp_path)))
    assert got == {t["query"]: helmet_demos(few, t["qid"]) for t in tests}
    assert any(q.startswith("query t") for demos in got.values() for q in demos)


def test_infinitebench_demonstrations_are_the_other_records_shuffled_as_load_infbench_shuffles_them(tmp_path):
    import datasets

    options = ["a farm", "the lighthouse", "a ship", "the town"]
    rows = [{"id": i, "context": "A book.", "input": f"Question {i}?", "answer": [options[i % 4]], "options": options}
            for i in range(6)]  # fmt: skip
    (tmp_path / "infbench").mkdir()
    for name in ("longbook_qa_eng", "longbook_choice_eng"):
        (tmp_path / f"infbench/{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = datasets.Dataset.from_list(rows)
    for subset in ("infbench_qa", "infbench_choice"):
        task = Helmet(subset=subset, data=str(tmp_path), sample="all")
        backend = shared_tiny_backend()
        for point in task.work([], [], []):
            sample = task.build(backend, *point)
            own = int(sample.id.rsplit("/", 1)[1])
            # load_infbench's add_demos: data.filter(id != own).shuffle(seed=42).select(range(shots))
            demos = table.filter(lambda x, own=own: x["id"] != own).shuffle(seed=42).select(range(2))
            if subset == "infbench_qa":
                shown = [f"[story text]\nQuestion: {d['input']}\nAnswer: {d['answer'][0]}" for d in demos]
            else:
                listed = "A. a farm\nB. the lighthouse\nC. a ship\nD. the town"
                shown = [f"[story text]\nQuestion: {d['input']}\nOptions:\n{listed}\nAnswer: "
                         f"{'ABCD'[options.index(d['answer'][0])]}" for d in demos]  # fmt: skip
            block = "For example:\n\n" + "\n\n".join(shown) + "\n\nNow, read the following story:\n\n"
            assert block + "A book." in sample.messages(0)[0]["content"]


def test_bad_input_is_one_usage_error(tmp_path):
    backend = shared_tiny_backend()
    with pytest.raises(UsageError, match="helmet reads local files: download data.tar.gz"):
        Helmet(subset="json_kv").check(backend, 4096)
    with pytest.raises(UsageError, match="helmet: size must be one of 4k, 8k, 16k, 32k, 64k, 128k"):
        make_task("helmet(size=100k)")
    with pytest.raises(UsageError, match="holds none of the files helmet:json_kv"):
        Helmet(subset="json_kv", size="8k", data=str(FIXTURES)).check(backend, 4096)
    lone = tmp_path / "nq.jsonl"
    lone.write_text((DATA / "kilt/nq-dev-multikilt_1000_k1000_dep6.jsonl").read_text())
    with pytest.raises(
        UsageError, match=r"needs kilt/nq-train-multikilt_1000_k3_dep6.jsonl beside .*pass shots=0"
    ):
        Helmet(subset="kilt_nq", data=str(lone)).check(backend, 4096)
    assert len(Helmet(subset="kilt_nq", data=str(lone), shots=0).records()) == 2
    with pytest.raises(UsageError, match="needs HELMET's prompts/asqa_revised.json"):
        asqa = tmp_path / "asqa.json"
        asqa.write_text((DATA / "alce/asqa_eval_gtr_top2000.json").read_text())
        Helmet(subset="alce_asqa", data=str(asqa)).check(backend, 4096)


@pytest.mark.slow  # the real command line with a model load
def test_a_run_shows_helmets_categories_and_skips_the_judged_summary_without_a_judge(
    tmp_path, tiny_model_dir
):
    out = tmp_path / "run"
    done = run_cli("run", "--model", f"hf:{tiny_model_dir}", "--tasks",
                   "helmet:json_kv(max_new_tokens=4),helmet:kilt_popqa(max_new_tokens=4),"
                   "helmet:infbench_sum(max_new_tokens=4)",
                   "--data", str(FIXTURES), "--out", str(out), "--no-progress", env=OFFLINE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "run.db") as db:
        rows = db.execute("SELECT task, status, error FROM results").fetchall()
    assert sorted(r[1] for r in rows) == ["ok"] * 4 + ["skipped"]
    assert [r[2] for r in rows if r[1] == "skipped"][0].startswith("graded by a judge")
    summary = json.loads((out / "summary.json").read_text())
    [helmet] = [b for b in summary["benchmarks"] if b["name"] == "helmet"]
    assert set(helmet["categories"]) >= {"Recall", "RAG", "average"} and helmet["categories"]["Cite"] is None
    assert "Per category, as helmet averages them" in (out / "report.html").read_text()

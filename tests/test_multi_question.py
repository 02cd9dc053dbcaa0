"""Multi-question samples (niah, threading, db_lookup with questions=N): one context, one turn per question."""

from __future__ import annotations

import re

import pytest
from conftest import assert_refused, prompt_tokens
from conftest import shared_tiny_backend as backend

from longscope.core import Sample
from longscope.tasks import cached_sample, make_task

NEEDLE = re.compile(r"The secret (?:number|word|code) for (\S+) is (\S+?)\.(?:\s|$)")
HEX = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RECORD = re.compile(rf"({HEX}) -> ({HEX})")
ROW = re.compile(r"Order (\d+) was placed by (\w+ \w+) in (\w+) for (\d+) (\w+) at (\d+) euros each\.")


# ---------------------------------------------------------------------------------------------------------
# Reference solvers: each reads one turn's question and answers it from the context alone.


def solve_niah(context: str, question: str) -> list[str]:
    found: dict[str, list[str]] = {}
    for key, value in NEEDLE.findall(context):
        found.setdefault(key, []).append(value)
    keys = re.split(r", | and ", re.findall(r"for (.+?) in the text above", question)[0])
    return [value for key in keys for value in found[key]]


def solve_threading(context: str, question: str) -> list[str]:
    records = RECORD.findall(context)
    step = {v: k for k, v in records} if "backwards" in question else dict(records)
    hops = int(re.search(r"(\d+) steps?", question).group(1))
    ends = []
    for current in re.findall(HEX, question):
        for _ in range(hops):
            current = step[current]
        assert current not in step  # the walk stops where the thread does
        ends.append(current)
    return ends


def solve_db(context: str, question: str) -> list[str]:
    rows = []
    for order, customer, _city, quantity, item, price in ROW.findall(context):
        product = item if quantity == "1" else item.removesuffix("s")
        rows.append(dict(id=order, customer=customer, product=product, quantity=quantity, price=price))
    column = {"quantity": "quantity", "unit price in euros": "price"}
    if m := re.match(r"What was the (quantity|unit price in euros) of order (\d+)\?", question):
        hits = [r for r in rows if r["id"] == m.group(2)]
    else:
        m = re.match(r"What was the (quantity|unit price in euros) of the order that (\w+ \w+) placed for (\w+)s\?",
                     question)  # fmt: skip
        hits = [r for r in rows if r["customer"] == m.group(2) and r["product"] == m.group(3)]
    assert len(hits) == 1, question
    return [hits[0][column[m.group(1)]]]


def solver(spec: str):
    return solve_niah if spec.startswith("niah") else solve_threading if "threading" in spec else solve_db


# The specs and the lengths their first turn is checked at with the tiny tokenizers (whose UUIDs are long).
CASES = [
    ("niah_multikey(questions=5)", (1024, 2048)),
    ("niah_multiquery(num_keys=6,num_queries=2,questions=3)", (1024, 2048)),
    ("niah(num_keys=3,questions=3,haystack=needles,key_type=uuid)", (1024, 2048)),
    ("threading(questions=3,hops=2)", (1024, 2048)),
    ("threading(direction=backward,questions=4,hops=2)", (2048,)),
    ("multi_threading(threads=2,hops=2,questions=2)", (2048,)),
    ("db_lookup(questions=4)", (1024, 2048)),
    ("db_lookup(complexity=2,questions=3)", (1024, 2048)),
    ("db_lookup(layout=clustered,density=0.3,questions=3)", (1024, 2048)),
    ("db_lookup(complexity=2,layout=clustered,questions=5)", (2048,)),
]
SPECS = [spec for spec, _ in CASES]


def build(spec: str, length: int = 2048, seed: int = 0, tokenizer=("chatml", "bytelevel")) -> Sample:
    task = make_task(spec)
    b = backend(*tokenizer)
    task.check(b, length)
    return task.build(b, length, 0.4 if task.uses_depth else None, seed)


# ---------------------------------------------------------------------------------------------------------
# Lengths


def question_tokens(b, text: str) -> int:
    return len(b.tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("tokenizer", [("chatml", "bytelevel"), ("inst", "metaspace")])
@pytest.mark.parametrize("spec,lengths", CASES)
def test_first_turn_is_exactly_the_length_and_later_turns_differ_only_by_their_question(
    spec, lengths, tokenizer
):
    b = backend(*tokenizer)
    for length in lengths:
        sample = build(spec, length, seed=3, tokenizer=tokenizer)
        assert prompt_tokens(b, sample, turn=0) + sample.max_new_tokens == length, (spec, length)
        assert sample.metadata["realised_tokens"] == length
        first = prompt_tokens(b, sample, 0)
        for t, turn in enumerate(sample.turns[1:], start=1):
            by_question = question_tokens(b, turn.question) - question_tokens(b, sample.turns[0].question)
            by_prefix = question_tokens(b, turn.answer_prefix) - question_tokens(
                b, sample.turns[0].answer_prefix
            )
            assert abs(prompt_tokens(b, sample, t) - first - by_question - by_prefix) <= 3, (spec, t)


# ---------------------------------------------------------------------------------------------------------
# Questions and gold answers


@pytest.mark.parametrize("spec", SPECS)
def test_every_turn_asks_its_own_question_and_its_gold_is_in_the_context(spec):
    task = make_task(spec)
    for seed in (0, 1):
        sample = build(spec, 4096, seed)
        assert len(sample.turns) == task.questions
        assert len({turn.question for turn in sample.turns}) == task.questions
        for turn in sample.turns:
            assert turn.answers and solver(spec)(sample.context, turn.question) == list(turn.answers)


@pytest.mark.parametrize("spec,laid", [("niah_multikey(questions=5)", 8), ("niah(questions=3)", 3)])
def test_niah_turns_ask_keys_of_their_own_beside_never_asked_distractors(spec, laid):
    task = make_task(spec)
    sample = task.build(backend(), 2048, 0.2, seed=4)
    needles = dict(NEEDLE.findall(sample.context))
    asked = [re.findall(r"for (\S+) in the text above", turn.question)[0] for turn in sample.turns]
    # The single-question task's distractors stay (never asked); every turn adds its own needle.
    assert len(needles) == laid == task.keys_laid and len(set(asked)) == task.questions
    assert set(asked) <= set(needles) and len(set(needles) - set(asked)) == task.num_keys - 1
    # To any one turn the other turns' needles are look-alikes, and the plane says so.
    assert task.diffusion >= make_task(task.name).diffusion
    assert make_task("niah(questions=3)").diffusion > make_task("niah").diffusion
    # Each turn's depth is where its own needle landed; the first turn's needle sits at the requested depth.
    depths = sample.metadata["turn_depths"]
    for key, depth in zip(asked, depths, strict=True):
        assert depth == round(sample.context.find(f"The secret number for {key} is") / len(sample.context), 4)
    assert abs(depths[0] - 0.2) < 0.05


def test_threading_turns_follow_separate_threads():
    task = make_task("threading(hops=3,questions=4)")
    sample = build("threading(hops=3,questions=4)", 4096, 2)
    records = RECORD.findall(sample.context)
    keys = {key for key, _ in records}
    # Only thread records link, and every turn's thread is laid: hops - 1 inner links per thread.
    assert sum(value in keys for _, value in records) == task.questions * (task.hops - 1)
    ends = [turn.answers[0] for turn in sample.turns]
    assert len(set(ends)) == task.questions


@pytest.mark.parametrize("complexity", [1, 2])
def test_db_lookups_of_one_table_are_each_others_look_alikes(complexity):
    sample = build(f"db_lookup(complexity={complexity},questions=4,density=0.2)", 4096, 1)
    rows = {order: (customer, item) for order, customer, _c, _q, item, _p in ROW.findall(sample.context)}
    if complexity == 1:
        asked = [re.search(r"order (\d+)\?", turn.question).group(1) for turn in sample.turns]
        assert all(order in rows for order in asked)
        assert len({order[:3] for order in asked}) == 1  # one shared prefix, shared by the look-alikes too
        alike = [order for order in rows if order[:3] == asked[0][:3] and order not in asked]
        assert abs(len(alike) / (len(rows) - 4) - 0.2) <= 0.07
    else:
        asked = [
            re.search(r"that (\w+ \w+) placed for (\w+)s\?", turn.question).groups() for turn in sample.turns
        ]
        assert len({customer for customer, _ in asked}) == 1 and len({product for _, product in asked}) == 4
    assert len(sample.metadata["turn_sql"]) == 4 and len(sample.metadata["turn_depths"]) == 4


# ---------------------------------------------------------------------------------------------------------
# Determinism, and questions=1 as before


@pytest.mark.parametrize(
    "spec", ["niah_multikey(questions=3)", "threading(questions=3)", "db_lookup(questions=3)"]
)
def test_same_seed_same_bytes_and_the_same_questions_at_every_length(spec, isolated_cache):
    first = build(spec, 2048, 5)
    assert build(spec, 2048, 5).to_json() == first.to_json()
    task = make_task(spec)
    assert (
        cached_sample(task, backend(), 2048, 0.4 if task.uses_depth else None, 5).to_json() == first.to_json()
    )
    other = build(spec, 2048, 6)
    assert [t.question for t in other.turns] != [t.question for t in first.turns]
    longer = build(spec, 4096, 5)
    assert longer.turns == first.turns and len(longer.context) > len(first.context)


@pytest.mark.parametrize(
    "spec",
    ["niah_multikey", "niah(haystack=needles)", "niah_multiquery", "threading", "multi_threading(hops=2)",
     "db_lookup", "db_lookup(complexity=2,layout=clustered)", "db_count"],
)  # fmt: skip
def test_questions_1_is_the_single_question_task_byte_for_byte(spec):
    plain = make_task(spec)
    explicit = make_task(spec.replace(")", ",questions=1)") if "(" in spec else f"{spec}(questions=1)")
    assert explicit == plain and explicit.label() == plain.label()
    # Left out of the parameters: they seed the questions and key the cache, as before the parameter existed.
    assert "questions" not in plain.params()
    depth = 0.4 if plain.uses_depth else None
    sample = plain.build(backend(), 2048, depth, 2)
    assert explicit.build(backend(), 2048, depth, 2).to_json() == sample.to_json()
    assert (
        len(sample.turns) == 1 and "turn_depths" not in sample.metadata and "turn_sql" not in sample.metadata
    )
    assert "questions" not in sample.id
    # A multi-question task differs in seed and label, so the two never share a cache entry.
    several = make_task(f"{plain.name}(questions=2)")
    assert several.params() != plain.params() and "questions=2" in several.label()


# ---------------------------------------------------------------------------------------------------------
# Multi-turn conversations


@pytest.mark.parametrize("spec", ["niah_multikey(questions=3)", "threading(questions=3,hops=2)",
                                  "db_lookup(questions=3)", "db_lookup(complexity=2,questions=3)"])  # fmt: skip
def test_third_turn_conversation_replies_with_the_first_two_gold_answers(spec):
    sample = build(spec, 2048, 1)
    msgs = sample.conversation(2)
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[0] == sample.messages(0)[0] and sample.context in msgs[0]["content"]
    for reply, turn in zip((msgs[1], msgs[3]), sample.turns[:2], strict=True):
        assert turn.answers[0] in reply["content"] and reply["content"].startswith(turn.answer_prefix.strip())
    assert msgs[2]["content"] == sample.turns[1].question and msgs[4]["content"] == sample.turns[2].question
    # The context is read once: later user turns carry only their question.
    assert sum(sample.context in m["content"] for m in msgs) == 1
    request = sample.request(2, conversation=True)
    assert request.messages == msgs and request.answer_prefix == sample.turns[2].answer_prefix


# ---------------------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    "spec,length,message",
    [
        ("niah_multikey(questions=0)", 1024, "questions must be at least 1"),
        ("niah_multikey(questions=300)", 1024, "questions=300 lays 303 needles"),
        ("niah_multiquery(questions=40,key_type=uuid)", 2048, "questions=40 lays 160 needles"),
        ("threading(questions=0)", 1024, "questions=0 must be at least 1"),
        ("threading(questions=40)", 2048, "hops=3 x threads=1 x questions=40 = 120 thread records"),
        ("db_lookup(questions=0)", 1024, "questions=0 must be at least 1"),
        ("db_count(questions=2)", 2048, "questions=2 needs query=lookup"),
        ("db_lookup(complexity=2,questions=16)", 4096, "questions=16 is more than 15"),
        ("db_lookup(questions=60)", 1024, "questions=60 asked orders"),
    ],
)
def test_bad_questions_are_refused_naming_the_parameter(spec, length, message):
    assert_refused(spec, length, message)

"""The contract every registered synthetic task keeps: exact lengths in two tokenizer kinds, the same bytes for the
same seed, a registered scorer that its own gold answers satisfy, and bad parameters refused in one line."""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from dataclasses import dataclass
from typing import ClassVar

import pytest
from conftest import tiny_tokenizer

from longscope import tasks
from longscope.backends.hf import HFTokenizer
from longscope.core import Sample, UsageError
from longscope.scoring import SCORERS, score_turn
from longscope.tasks import TASKS, Task, cached_sample, make_task

TOKENIZERS = [("chatml", "bytelevel"), ("inst", "metaspace")]
SYNTHETIC = [name for name, cls in TASKS.items() if not cls.published and not cls.reads_data]


@dataclass(frozen=True)
class Contract:
    # Specs built at exact lengths, each with its lengths: the defaults first, then parameters that change
    # how the context is built. The tiny test tokenizers cost more tokens than real ones (made-up words and
    # UUIDs fall apart into letters), so a few tasks need more than 1k at their defaults.
    lengths: dict[str, tuple[int, ...]]
    # (spec, length, what the one-line refusal names): bad values of the task's own parameters, refused by the
    # type check or by check(), before any sample is built.
    refused: tuple[tuple[str, int, str], ...]
    # build() refuses them too, with the same line. Not every task checks again in build(): the runner calls
    # check() first, and the others' build() may then fail in some other way.
    build_refuses: bool = False
    # The gold answers are counted on the fitted context (counts, most frequent words, query results), so they
    # may change with the length; otherwise the same seed asks the same question with the same answers.
    answers_follow_fit: bool = False


def _db(name: str, *refused: tuple[str, int, str]) -> Contract:
    # At the default density=0.1 the 16 rows of 1k tokens hold too few relevant ones for most queries.
    lengths = {
        name: (2048,),
        f"{name}(density=0.3)": (1024,),
        f"{name}(complexity=2,layout=clustered,density=0.3)": (2048,),
    }
    return Contract(lengths, refused, answers_follow_fit=True)


CONTRACTS: dict[str, Contract] = {
    "common_words": Contract(
        {"common_words": (1024, 2048), "common_words(top=4,common_count=12,rare_count=2)": (2048,)},
        (
            ("common_words(top=0)", 2048, "top=0 must be at least 1"),
            ("common_words(rare_count=0)", 2048, "rare_count=0 must be at least 1"),
            ("common_words(common_count=4)", 2048, "common_count=4 must be at least rare_count+2=5"),
            ("common_words", 400, "top=10 common words"),
            ("common_words(top=40)", 2048, "lower top or rare_count"),
        ),
        # The same words are the common ones at every length, listed in the order the fitted rounds rank them.
        answers_follow_fit=True,
        build_refuses=True,
    ),
    "frequent_words": Contract(
        {"frequent_words": (1024, 2048), "frequent_words(alpha=1.2,top=5)": (1024,)},
        (
            ("frequent_words(top=0)", 2048, "top=0 must be at least 1"),
            ("frequent_words(alpha=0)", 2048, "alpha=0.0 must be above 0"),
            ("frequent_words(vocabulary=3)", 2048, "vocabulary=3 must be larger than top=3"),
            ("frequent_words(vocabulary=9000)", 2048, "vocabulary=9000 must be at most 5000"),
        ),
        answers_follow_fit=True,
        build_refuses=True,
    ),
    "count_occurrences": Contract(
        {"count_occurrences": (1024, 2048)},
        (
            ("count_occurrences(max_count=0)", 2048, "max_count=0 must be at least 1"),
            ("count_occurrences(max_count=500)", 1024, "max_count=500 target sentences"),
        ),
        build_refuses=True,
    ),
    "ancestry": Contract(
        {
            "ancestry": (1024, 2048),
            "ancestry(chain_length=10,k=9,distractor_chains=3,haystack=noise)": (2048,),
        },
        (
            ("ancestry(k=6)", 1024, "k=6"),
            ("ancestry(k=0)", 1024, "k=0"),
            ("ancestry(chain_length=1,k=1)", 1024, "chain_length=1"),
            ("ancestry(distractor_chains=-1)", 1024, "distractor_chains=-1"),
            (
                "ancestry(chain_length=200,distractor_chains=5)",
                1024,
                "chain_length * (1 + distractor_chains)",
            ),
            ("ancestry(haystack=hay)", 1024, "haystack"),
        ),
        build_refuses=True,
    ),
    "db_lookup": _db(
        "db_lookup",
        ("db_lookup(density=1.0)", 600_000, "density=1.0"),
        ("db_lookup(questions=0)", 2048, "questions"),
    ),
    "db_count": _db(
        "db_count",
        ("db_count(density=0)", 2048, "density=0.0"),
        ("db_count(density=1.5)", 2048, "density=1.5"),
    ),
    "db_max": _db("db_max", ("db_max(complexity=3)", 2048, "complexity=3")),
    "db_min": _db("db_min", ("db_min(layout=diagonal)", 2048, "layout")),
    "db_sum": _db(
        "db_sum",
        ("db_sum(complexity=3)", 2048, "complexity=3"),
        ("db_sum(answer=id)", 2048, "answer=id"),
        ("db_sum(layout=diagonal)", 2048, "layout"),
        ("db_sum(query=median)", 2048, "query"),
        ("db_sum(density=0.01)", 1024, "density=0.01"),
    ),
    "db_group": _db("db_group", ("db_group(density=0.05)", 1024, "density=0.05")),
    "confusing_facts": Contract(
        {"confusing_facts": (1024, 2048), "confusing_facts(distractors=11,haystack=noise)": (2048,)},
        (
            ("confusing_facts(distractors=-1)", 1024, "distractors=-1"),
            ("confusing_facts(distractors=12)", 1024, "distractors=12"),
            ("confusing_facts(haystack=hay)", 1024, "haystack"),
        ),
        build_refuses=True,
    ),
    "keyword_substitution": Contract(
        {"keyword_substitution": (1024, 2048)},
        (
            ("keyword_substitution(distractors=-2)", 1024, "distractors=-2"),
            ("keyword_substitution(distractors=21)", 1024, "distractors=21"),
        ),
        build_refuses=True,
    ),
    "icl_many_labels": Contract(
        {"icl_many_labels": (4096,), "icl_many_labels(labels=12)": (1024, 2048)},
        (
            ("icl_many_labels(labels=1)", 4096, "labels=1 must be between 2 and 500"),
            ("icl_many_labels(labels=501)", 4096, "labels=501 must be between 2 and 500"),
            ("icl_many_labels(labels=100)", 1024, "labels=100 needs about"),
            ("icl_many_labels", 1024, "labels=50 needs about"),
            ("icl_many_labels(labels=ten)", 4096, "parameter labels"),
        ),
    ),
    "icl_many_labels_depth": Contract(
        {"icl_many_labels_depth": (4096,), "icl_many_labels_depth(labels=12,shots=2)": (1024, 2048)},
        (
            ("icl_many_labels_depth(shots=0)", 4096, "shots=0 must be between 1 and 20"),
            ("icl_many_labels_depth(labels=1)", 4096, "labels=1 must be between 2 and 500"),
        ),
    ),
    "instruction_exam": Contract(
        {
            "instruction_exam": (1024, 2048),
            "instruction_exam(layout=global)": (1024,),
            "instruction_exam(layout=local)": (1024,),
        },
        (
            ("instruction_exam(asked=0)", 2048, "asked=0 must be at least 1"),
            ("instruction_exam(asked=10)", 2048, "asked=10 needs about 120 output tokens"),
            ("instruction_exam(min_items=3)", 2048, "min_items=3 is below asked=5"),
            ("instruction_exam(item_type=add)", 2048, "item_type=add cannot be used with layout=mixed"),
            ("instruction_exam(min_items=400)", 2048, "min_items=400 needs about"),
            ("instruction_exam(layout=sideways)", 2048, "parameter layout"),
            ("instruction_exam(item_type=poetry)", 2048, "parameter item_type"),
        ),
    ),
    "multi_needle_reasoning": Contract(
        {"multi_needle_reasoning": (1024, 2048), "multi_needle_reasoning(needles=5,distractors=3)": (1024,)},
        (
            ("multi_needle_reasoning(needles=1)", 1024, "needles=1"),
            ("multi_needle_reasoning(needles=6)", 1024, "needles=6"),
            ("multi_needle_reasoning(distractors=-1)", 1024, "distractors=-1"),
            ("multi_needle_reasoning(operation=product)", 1024, "operation"),
            ("multi_needle_reasoning(haystack=hay)", 1024, "haystack"),
        ),
        build_refuses=True,
    ),
    "niah": Contract(
        {"niah": (1024, 2048), "niah(haystack=needles)": (1024,)},
        (
            ("niah(num_keys=0)", 1024, "num_keys must be at least 1"),
            ("niah(num_queries=3)", 1024, "num_queries=3 exceeds num_keys=1"),
            ("niah(key_type=colour)", 1024, "key_type"),
            ("niah(haystack=hay)", 1024, "haystack"),
        ),
    ),
    "niah_multikey": Contract(
        {"niah_multikey": (1024, 2048), "niah_multikey(haystack=needles,key_type=uuid)": (1024,)},
        (("niah_multikey(value_type=colour)", 1024, "value_type"),),
    ),
    "niah_multivalue": Contract(
        {"niah_multivalue": (1024, 2048), "niah_multivalue(haystack=noise,value_type=uuid)": (1024,)},
        (("niah_multivalue(num_values=0)", 1024, "num_values"),),
    ),
    "niah_multiquery": Contract(
        {"niah_multiquery": (1024, 2048)},
        (("niah_multiquery(num_queries=5)", 1024, "num_queries=5 exceeds num_keys=4"),),
    ),
    "reorder": Contract(
        {"reorder": (1024, 2048), "reorder(segments=10)": (2048,)},
        (
            ("reorder(segments=1)", 2048, "segments=1 must be between 2 and 23"),
            ("reorder(segments=24)", 2048, "segments=24 must be between 2 and 23"),
            ("reorder", 300, "segments=6 need at least 12 sentences"),
        ),
        build_refuses=True,
    ),
    "best_of_n": Contract(
        {"best_of_n": (2048,), "best_of_n(candidates=8)": (1024, 2048)},
        (
            ("best_of_n(candidates=1)", 2048, "candidates=1 must be between 2 and 99"),
            ("best_of_n(candidates=100)", 8192, "candidates=100 must be between 2 and 99"),
            ("best_of_n", 700, "candidates=20 statements"),
        ),
        build_refuses=True,
    ),
    "threading": Contract(
        {"threading": (1024, 2048), "threading(direction=backward,hops=1)": (1024,)},
        (
            ("threading(hops=0)", 2048, "hops=0 must be at least 1"),
            ("threading(direction=sideways)", 2048, "direction"),
            ("threading(hops=200)", 2048, "hops=200 x threads=1"),
        ),
    ),
    "multi_threading": Contract(
        {"multi_threading": (2048,), "multi_threading(direction=backward,hops=5,threads=2)": (2048,)},
        (
            ("multi_threading(threads=0)", 2048, "threads=0 must be at least 1"),
            ("multi_threading", 1024, "threads=3"),
            ("multi_threading(hops=40)", 4096, "at most"),
        ),
    ),
    "variable_tracking": Contract(
        {"variable_tracking": (1024, 2048), "variable_tracking(haystack=essay,chains=2,hops=7)": (1024,)},
        (
            ("variable_tracking(hops=0)", 1024, "hops=0 must be at least 1"),
            ("variable_tracking(chains=0)", 1024, "chains=0 must be at least 1"),
            ("variable_tracking(haystack=poems)", 1024, "haystack"),
            ("variable_tracking(hops=120)", 1024, "hops=120"),
            ("variable_tracking(chains=40,hops=4)", 1024, "chains=40"),
        ),
    ),
    # Long-output families (issue 15): the output budget is counted inside the length.
    "packed_questions": Contract(
        {
            "packed_questions": (1024, 2048),
            "packed_questions(one_at_a_time=true,questions=6)": (1024,),
            "packed_questions(kind=arithmetic)": (1024,),
        },
        (
            ("packed_questions(questions=0)", 2048, "questions=0 must be between 1 and 500"),
            ("packed_questions(questions=20,max_new_tokens=50)", 2048, "cannot hold 20 answer line(s)"),
            ("packed_questions(kind=essay)", 2048, "parameter kind"),
            ("packed_questions(questions=100)", 1024, "length 1024 is too short"),
        ),
    ),
    "length_following": Contract(
        {"length_following": (1024, 2048), "length_following(language=zh,words=150)": (1024,)},
        (
            ("length_following(words=0)", 2048, "words=0 must be between 1 and 100000"),
            ("length_following(words=1000,max_new_tokens=1000)", 4096, "cannot hold 1000 English words"),
            ("length_following(words=1000)", 2048, "length 2048 is too short"),
        ),
    ),
    "procedural": Contract(
        {
            "procedural": (2048, 3072),
            "procedural(kind=procedure)": (2048,),
            "procedural(kind=schedule)": (2048,),
        },
        (
            ("procedural(budget=10)", 2048, "budget=10 must be between 64 and 65536"),
            ("procedural(budget=512,max_new_tokens=100)", 2048, "max_new_tokens=100 is below budget=512"),
            ("procedural(kind=poem)", 2048, "parameter kind"),
            ("procedural(budget=1024)", 2048, "length 2048 is too short"),
        ),
    ),
    "constrained_writing": Contract(
        {"constrained_writing": (1024, 2048), "constrained_writing(unit=week,constraints=5)": (1024,)},
        (
            ("constrained_writing(every=12)", 2048, "every=12 cannot be satisfied in periods=10"),
            ("constrained_writing(span=0)", 2048, "span=0 cannot be satisfied"),
            ("constrained_writing(periods=1)", 2048, "periods=1 must be between 2"),
            ("constrained_writing(max_new_tokens=50)", 2048, "cannot hold 10 entries"),
        ),
    ),
    # Harder reading tasks (issue 22): latent needles, the ladder, co-reference, GSM-like graphs, span finding.
    "latent_needles": Contract(
        {"latent_needles": (1024, 2048), "latent_needles(ask=city,distractors=6,haystack=noise)": (1024,)},
        (
            ("latent_needles(distractors=-1)", 1024, "distractors=-1 must be between 0 and 20"),
            ("latent_needles(distractors=21)", 1024, "distractors=21 must be between 0 and 20"),
            ("latent_needles(ask=country)", 1024, "parameter ask"),
            ("latent_needles(haystack=hay)", 1024, "parameter haystack"),
            ("latent_needles(distractors=20)", 300, "lower distractors or raise the length"),
        ),
        build_refuses=True,
    ),
    "ladder_multikey": Contract(
        {
            "ladder_multikey": (1024, 2048),
            "ladder_multikey(level=medium)": (1024,),
            "ladder_multikey(level=hard)": (1024,),
        },
        (
            ("ladder_multikey(level=extreme)", 1024, "parameter level"),
            ("ladder_multikey(level=hard)", 200, "choose a lower level or raise the length"),
        ),
        build_refuses=True,
    ),
    "ladder_multivalue": Contract(
        {
            "ladder_multivalue": (1024, 2048),
            "ladder_multivalue(level=easy)": (1024,),
            "ladder_multivalue(level=hard)": (1024,),
        },
        (
            ("ladder_multivalue(level=5)", 1024, "parameter level"),
            ("ladder_multivalue(level=hard)", 300, "choose a lower level or raise the length"),
        ),
        build_refuses=True,
    ),
    "ladder_qa": Contract(
        {"ladder_qa": (1024, 2048), "ladder_qa(level=medium)": (2048,), "ladder_qa(level=hard)": (2048,)},
        (
            ("ladder_qa(level=expert)", 1024, "parameter level"),
            ("ladder_qa(level=hard)", 400, "choose a lower level or raise the length"),
        ),
        build_refuses=True,
    ),
    "ladder_solve": Contract(
        {
            "ladder_solve": (1024, 2048),
            "ladder_solve(level=easy)": (1024,),
            "ladder_solve(level=hard)": (1024,),
        },
        (
            ("ladder_solve(level=trivial)", 1024, "parameter level"),
            ("ladder_solve(level=hard)", 200, "choose a lower level or raise the length"),
        ),
        build_refuses=True,
    ),
    "mrcr": Contract(
        {"mrcr": (2048, 3072), "mrcr(rounds=4,decoys=0)": (2048,)},
        (
            ("mrcr(rounds=1)", 2048, "rounds=1 must be between 2 and 16"),
            ("mrcr(rounds=17)", 2048, "rounds=17 must be between 2 and 16"),
            ("mrcr(decoys=11)", 2048, "decoys=11 must be between 0 and 10"),
            ("mrcr(rounds=16,decoys=10)", 2048, "lower rounds or decoys or raise the length"),
            ("mrcr(max_new_tokens=8)", 2048, "raise max_new_tokens"),
        ),
        build_refuses=True,
    ),
    "gsm_graph": Contract(
        {"gsm_graph": (1024, 2048), "gsm_graph(ops=8,noise=0,haystack=noise)": (1024,)},
        (
            ("gsm_graph(ops=0)", 1024, "ops=0 cannot be built; use 1 to 40 operations"),
            ("gsm_graph(ops=41)", 4096, "ops=41 cannot be built; use 1 to 40 operations"),
            ("gsm_graph(noise=11)", 1024, "noise=11 must be between 0 and 10"),
            ("gsm_graph(ops=30,noise=5)", 1024, "lower ops or noise or raise the length"),
        ),
        build_refuses=True,
    ),
    "span_finding": Contract(
        {
            "span_finding": (1024, 2048),
            "span_finding(variant=multi,spans=4)": (1024,),
            "span_finding(variant=global,spans=2)": (1024,),
        },
        (
            (
                "span_finding(variant=multi,spans=1)",
                1024,
                "spans=1 must be between 2 and 8 for variant=multi",
            ),
            (
                "span_finding(variant=global,spans=9)",
                1024,
                "spans=9 must be between 1 and 8 for variant=global",
            ),
            ("span_finding(variant=everything)", 1024, "parameter variant"),
            ("span_finding(variant=global,spans=8)", 300, "lower spans or raise the length"),
        ),
        build_refuses=True,
    ),
}

LENGTH_CASES = [
    (name, spec, length)
    for name, contract in CONTRACTS.items()
    for spec, lengths in contract.lengths.items()
    for length in lengths
]
# Each spec at its first length: the determinism checks run over the variants too.
SPEC_CASES = [
    (name, spec, lengths[0])
    for name, contract in CONTRACTS.items()
    for spec, lengths in contract.lengths.items()
]
REFUSED_CASES = [(name, *case) for name, contract in CONTRACTS.items() for case in contract.refused]


@functools.cache
def backend(template: str = "chatml", style: str = "bytelevel") -> HFTokenizer:
    """A tokenizer and chat template without a model: all that building samples needs."""
    return HFTokenizer(tiny_tokenizer(template, style), name=f"tiny-{template}-{style}")


def depth_for(task: Task) -> float | None:
    return 0.5 if task.uses_depth else None


def default_length(name: str) -> int:
    return CONTRACTS[name].lengths[name][0]


def build(spec: str, length: int, seed: int, tokenizer: tuple[str, str] = TOKENIZERS[0]) -> Sample:
    task = make_task(spec)
    return task.build(backend(*tokenizer), length, depth_for(task), seed)


def test_every_synthetic_task_has_a_contract():
    # A new task gets its lengths and bad parameters listed here, or this fails; a renamed one is noticed too.
    assert len(SYNTHETIC) > 20
    assert sorted(CONTRACTS) == SYNTHETIC
    for name, contract in CONTRACTS.items():
        assert name in contract.lengths and contract.refused, name
        assert all(spec.split("(")[0] == name for spec in contract.lengths), name
        assert all(spec.split("(")[0] == name for spec, _, _ in contract.refused), name


# ---------------------------------------------------------------------------------------------------------
# Exact length


@pytest.mark.parametrize("template,style", TOKENIZERS)
@pytest.mark.parametrize("name,spec,length", LENGTH_CASES)
def test_whole_request_is_exactly_the_target_length(name, spec, length, template, style):
    tokenizer = backend(template, style)
    task = make_task(spec)
    task.check(tokenizer, length)
    sample = task.build(tokenizer, length, depth_for(task), seed=3)
    # Counted in one piece by the tokenizer itself, not by the fitter's own (piecewise) counter.
    prompt = tokenizer.render(sample.messages(), sample.turns[0].answer_prefix)
    tokens = len(tokenizer.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert tokens + sample.max_new_tokens == length
    meta = sample.metadata
    assert meta["realised_tokens"] == meta["target_length"] == length
    assert meta["realised_chars"] == len(prompt)
    assert meta["tokenizer"] == tokenizer.tokenizer_fingerprint()


# ---------------------------------------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize("name,spec,length", SPEC_CASES)
def test_the_same_seed_gives_the_same_bytes_and_the_cache_gives_them_back(name, spec, length, isolated_cache):
    first = build(spec, length, seed=5)
    assert build(spec, length, seed=5).to_json() == first.to_json()
    task = make_task(spec)
    cached = cached_sample(task, backend(), length, depth_for(task), 5)
    assert cached.to_json() == first.to_json()
    files = list(isolated_cache.rglob("*.json"))
    assert len(files) == 1 and files[0].read_text(encoding="utf-8") == first.to_json()
    assert cached_sample(task, backend(), length, depth_for(task), 5) == first
    assert Sample.from_json(first.to_json()) == first


@pytest.mark.parametrize("name,spec,length", SPEC_CASES)
def test_another_seed_asks_another_question_and_another_length_the_same_one(name, spec, length):
    first = build(spec, length, seed=5)
    other = build(spec, length, seed=6)
    assert other.to_json() != first.to_json()
    assert (other.question, other.answers) != (first.question, first.answers)
    # The seed alone draws the question: only the haystack grows with the length.
    longer = build(spec, length + 1024, seed=5)
    assert longer.question == first.question and len(longer.context) > len(first.context)
    if not CONTRACTS[name].answers_follow_fit:
        assert longer.answers == first.answers
    meta, task = first.metadata, make_task(spec)
    assert meta["params"] == task.params() and meta["seed"] == 5
    assert (meta["diffusion"], meta["scope"]) == (task.diffusion, task.scope)
    assert 0 <= task.diffusion <= 1 and 0 <= task.scope <= 1


@pytest.mark.parametrize("name,spec,length", SPEC_CASES)
def test_the_sample_names_its_evidence_and_the_context_holds_it(name, spec, length):
    """Measured scope and diffusion and retrieval recall read the evidence: every generator records the units
    its answers need, or that they need every unit; each named unit is a piece of the context."""
    sample = build(spec, length, seed=5)
    if sample.metadata.get("evidence") in ("every unit", "no unit"):
        assert sample.evidence == ()
        return
    if not sample.context.strip():  # nothing to read (a writing task): nothing to find
        return
    assert sample.evidence, f"{spec} records no evidence"
    assert all(piece and piece in sample.context for piece in sample.evidence)
    for turn_pieces in sample.metadata.get("turn_evidence", []):
        assert turn_pieces and set(turn_pieces) <= set(sample.evidence)


# ---------------------------------------------------------------------------------------------------------
# The scorer


@pytest.mark.parametrize("name", SYNTHETIC)
def test_the_scorer_exists_and_the_gold_answer_earns_full_marks(name):
    task = make_task(name)
    assert task.metric in SCORERS
    sample = build(name, default_length(name), seed=1)
    for turn in sample.turns:
        assert turn.answers, name
        gold = "\n".join(turn.answers)
        assert score_turn(task.metric, " " + gold, turn, sample.metadata)[0] == 1.0
        assert score_turn(task.metric, " I cannot tell.", turn, sample.metadata)[0] == 0.0
        if turn.forbidden:
            # Naming a known-false value beside the right one earns nothing.
            assert score_turn(task.metric, f" {gold} or {turn.forbidden[0]}", turn, sample.metadata)[0] == 0.0


def test_a_task_naming_a_scorer_that_does_not_exist_is_refused_at_registration():
    @dataclass(frozen=True)
    class Misspelt(Task):
        name: ClassVar[str] = "misspelt"
        metric: ClassVar[str] = "contains_alll"

    module = types.ModuleType("misspelt_tasks")
    Misspelt.__module__ = module.__name__
    module.Misspelt = Misspelt
    with pytest.raises(ValueError, match="'contains_alll', which is no registered scorer"):
        tasks._register_from(module)
    assert "misspelt" not in TASKS
    Misspelt.metric = "contains_all"
    assert tasks.task_metrics(Misspelt) == {"contains_all"}


# ---------------------------------------------------------------------------------------------------------
# Bad parameters


def refused_in_one_line(message: str, call) -> str:
    with pytest.raises(UsageError) as caught:
        call()
    text = str(caught.value)
    assert message in text and "\n" not in text, text
    return text


@pytest.mark.parametrize("name,spec,length,message", REFUSED_CASES)
def test_a_bad_parameter_is_one_line_naming_it_before_any_sample_is_built(name, spec, length, message):
    try:
        task = make_task(spec)
    except UsageError as refused:  # the type check: there is no task to build with
        assert message in str(refused) and "\n" not in str(refused)
        return
    refused_in_one_line(message, lambda: task.check(backend(), length))
    if CONTRACTS[name].build_refuses:
        refused_in_one_line(message, lambda: task.build(backend(), length, depth_for(task), 0))


def _an_int_parameter(cls: type[Task]) -> str:
    hints = typing.get_type_hints(cls)
    return next(f.name for f in dataclasses.fields(cls) if hints[f.name] is int)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_an_unknown_or_ill_typed_parameter_is_one_line_naming_it(name):
    text = refused_in_one_line(
        "unknown parameter 'no_such_thing'", lambda: make_task(f"{name}(no_such_thing=1)")
    )
    assert re.search(r"parameters: \w+", text)
    field = _an_int_parameter(TASKS.get(name))
    refused_in_one_line(f"parameter {field}", lambda: make_task(f"{name}({field}=lots)"))


def test_an_unknown_task_lists_the_known_ones():
    text = refused_in_one_line("unknown task 'nope'", lambda: make_task("nope"))
    assert all(name in text for name in SYNTHETIC)

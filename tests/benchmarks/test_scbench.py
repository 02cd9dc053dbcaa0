"""The SCBench loader on fixture files in its published layout: a sample per record with a turn per request,
SCBench's prompts, caps and scorers; own-answer multi-turn feeds the model's previous answer into the next turn;
multi-turn-own on a task without turns is refused in one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import shared_tiny_backend

from longscope.config import RunConfig
from longscope.core import Generation, UsageError
from longscope.executors.base import run_item
from longscope.methods.base import PromptMethod
from longscope.plan import Prepared, WorkItem, _fit
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.benchmarks.scbench import SCBench

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scbench"


def samples(subset: str):
    task = SCBench(subset=subset, data=str(FIXTURES))
    backend = shared_tiny_backend()
    return task, [task.build(backend, length, depth, seed) for length, depth, seed in task.work([], [], [])]


def test_kv_records_become_samples_with_a_turn_per_request():
    task, built = samples("scbench_kv")
    assert len(built) == 2 and [len(s.turns) for s in built] == [2, 1]
    first = built[0]
    assert (first.max_new_tokens, first.system, task.metric) == (
        150,
        "You are a helpful assistant.",
        "scbench_kv",
    )
    assert first.turns[1].answers == ("value-040-omega",)
    text = first.messages(0)[-1]["content"]
    assert text.startswith(
        "Extract the value corresponding to the specified key in the JSON object below.\n\n{"
    )
    assert text.endswith('\n\nKey: "key-007-alpha"\nThe value associated with the specified key is: ')
    # Multi-turn: the second request is its own user message after the first answer (gold by default).
    conversation = first.request(1, conversation=True).messages
    assert [m["role"] for m in conversation] == ["system", "user", "assistant", "user"]
    assert conversation[2]["content"] == "value-057-omega"
    assert conversation[3]["content"].startswith('Key: "key-012-alpha"')


def test_choice_and_variable_tracking_prompts_and_golds():
    _, (book,) = samples("scbench_choice_eng")
    assert book.turns[0].question == (
        "Question: How many gulls did the keeper count in chapter 4?\nA. 9\nB. 12\nC. 15\nD. 18\n\n"
        "The the correct answer is"
    )
    assert book.turns[0].answers == ("12", "B")
    task, built = samples("scbench_vt")
    assert len(built) == 1  # the record with an empty answer is skipped, with its reason
    assert any("no 'answer'" in reason for _, reason in task.rejected())
    assert built[0].turns[0].answers == ("AAA", "BBB", "DDD")


def test_scbench_scorers_by_hand():
    # KV: a substring is enough (SCBench's own rule), unlike InfiniteBench's word split.
    assert score("scbench_kv", "the value is value-057-omega.", ["value-057-omega"]) == 1.0
    assert score("scbench_kv", "value-057-omegax", ["value-057-omega"]) == 1.0
    assert score("scbench_kv", "value-058-omega", ["value-057-omega"]) == 0.0
    # Variable tracking: 2 of 3 names found → 0.67 (rounded to two decimals).
    assert score("scbench_match_all", "aaa and DDD", ["AAA", "BBB", "DDD"]) == 0.67
    assert score("scbench_contains_any_upper", " it was Sam ", ["sam"]) == 1.0
    assert score("infinitebench_choice", "B. 12", ["12", "B"]) == 1.0
    assert score("infinitebench_first_int", "The pass key is 71432.", ["71432"]) == 1.0


@dataclass(frozen=True)
class Echo(PromptMethod):
    """Answers each turn with a text naming the turn, and records every request it was given."""

    name: ClassVar[str] = "echo"
    seen: ClassVar[list] = []

    def answer(self, sample, turn, request, backend):
        Echo.seen.append(request)
        return Generation(text=f"my answer {turn}", input_tokens=1, output_tokens=1, prefill_s=0.0,
                          decode_s=0.0, wall_s=0.0)  # fmt: skip


def run_turns(mode: str):
    task, built = samples("scbench_kv")
    Echo.seen.clear()
    item = WorkItem(task=task, length=0, depth=None, seed=0, method=Echo(), mode=mode)
    rows = run_item(Prepared(item, built[0]), shared_tiny_backend(), retries=0, attempts_before={})
    return rows, list(Echo.seen)


def test_own_answer_multi_turn_feeds_the_previous_answer_into_the_next_turn():
    rows, requests = run_turns("multi-turn-own")
    assert [r.prediction for r in rows] == ["my answer 0", "my answer 1"]
    assert all(r.mode == "multi-turn-own" for r in rows)
    second = requests[1].messages
    assert second[2] == {"role": "assistant", "content": "my answer 0"}
    assert second[3]["content"].startswith('Key: "key-012-alpha"')
    # The gold multi-turn mode replies with the gold answer instead: the check above can fail.
    _, gold = run_turns("multi-turn")
    assert gold[1].messages[2] == {"role": "assistant", "content": "value-057-omega"}


def test_multi_turn_own_on_a_task_without_turns_is_one_line_before_any_sample():
    backend = shared_tiny_backend()
    task = make_task("niah")
    sample = task.build(backend, 1024, 0.5, 0)
    item = WorkItem(task=task, length=1024, depth=0.5, seed=0, method=Echo(), mode="multi-turn-own")
    with pytest.raises(UsageError) as caught:
        _fit(item, sample, backend, RunConfig())
    assert "\n" not in str(caught.value) and "one question per sample" in str(caught.value)
    assert "multi-turn-own" in RunConfig(mode="multi-turn-own").to_argv()

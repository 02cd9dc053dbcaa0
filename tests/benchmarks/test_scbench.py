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


def test_math_find_prompts_carry_scbench_prefixes_and_its_last_prefix_quirk():
    task, built = samples("scbench_mf")
    assert len(built) == 1 and task.metric == "scbench_math_find"
    assert any("does not say 'The ... is'" in reason for _, reason in task.rejected())
    (numbers,) = built
    first = numbers.messages(0)[-1]["content"]
    assert first.startswith("What is the largest number of the list?\n\n[41, 7, 93")
    assert first.endswith("]\n\nThe largest number of the list is")
    # Every follow-up takes the prefix of the *last* request, as SCBench's prompt builder does.
    assert (
        numbers.turns[1].question == "What is the median of the list?\n\nThe smallest number of the list is"
    )
    assert numbers.max_new_tokens == 5 and numbers.turns[2].answers == ("35.5",)


def test_math_find_scorer_by_hand():
    assert score("scbench_math_find", "It is 93.", ["93"]) == 1.0
    assert score("scbench_math_find", "3.7 or so", ["3"]) == 1.0  # an integer gold takes the integer part
    assert score("scbench_math_find", "35.5", ["35.5"]) == 1.0
    assert score("scbench_math_find", "35", ["35.5"]) == 0.0
    assert score("scbench_math_find", "-3", ["-3"]) == 0.0  # SCBench reads no sign
    assert score("scbench_math_find", "none", ["3"]) == 0.0


def test_repoqa_scores_the_best_matching_function_at_bleu_0_8():
    task, (repo,) = samples("scbench_repoqa")
    assert task.metric == "scbench_repoqa" and repo.max_new_tokens == 1024
    assert repo.messages(0)[-1]["content"].startswith(
        "Based on the function description and code context, please retrieve and repeat the exact described "
        "function from the code context in a code block wrapped by ```:\n\n# toolbox/util.py"
    )
    assert [name for name, _ in repo.metadata["needles"]] == ["merge_counts", "clamp"]
    merge, clamp = (turn.answers[0] for turn in repo.turns)
    meta = repo.metadata
    assert score("scbench_repoqa", f"Here it is:\n```python\n{merge}\n```\nDone.", [merge], meta) == 1.0
    # The reply gives the other function: its best match is clamp, not the asked merge_counts.
    assert score("scbench_repoqa", f"```python\n{clamp}\n```", [merge], meta) == 0.0
    # The right function, but only its first line: BLEU well under 0.8.
    assert score("scbench_repoqa", "```\ndef merge_counts(left, right):\n```", [merge], meta) == 0.0


def test_mixed_sets_score_each_request_by_its_own_subtask():
    task, (mixed,) = samples("scbench_summary_with_needles")
    assert task.metric == "scbench_mixed" and mixed.max_new_tokens == 800
    summary, passkey = mixed.turns
    assert mixed.metadata["turn_tasks"] == {summary.answers[0]: "scbench_summary", "48213": "scbench_passkey"}
    assert score("scbench_mixed", "The pass key is 48213.", passkey.answers, mixed.metadata) == 1.0
    assert score("scbench_mixed", "48212", passkey.answers, mixed.metadata) == 0.0
    assert score("scbench_mixed", summary.answers[0], summary.answers, mixed.metadata) == pytest.approx(1.0)
    _, (code_and_kv,) = samples("scbench_repoqa_and_kv")
    function, value = code_and_kv.turns
    meta = code_and_kv.metadata
    assert score("scbench_mixed", f"the value is {value.answers[0]}", value.answers, meta) == 1.0
    assert score("scbench_mixed", f"```\n{function.answers[0]}\n```", function.answers, meta) == 1.0
    assert score("scbench_mixed", "no code", function.answers, meta) == 0.0


def test_kv_compressible_uses_its_passage_prompt_and_substring_match():
    task, (passage,) = samples("scbench_kv_compressible")
    assert task.metric == "scbench_kv" and passage.metadata["kv_task"] == "kv_compressible_passage"
    assert passage.messages(0)[-1]["content"].startswith(
        "Extract the value corresponding to the specified key in the following passage.\n\nThe code for item"
    )


def test_new_subsets_run_end_to_end_in_multi_turn_own():
    """Each new subset's first sample through the executor: a row per request, scored, no failure."""
    backend = shared_tiny_backend()
    for subset in ("scbench_mf", "scbench_repoqa", "scbench_summary_with_needles", "scbench_repoqa_and_kv"):
        task, built = samples(subset)
        item = WorkItem(task=task, length=0, depth=None, seed=0, method=Echo(), mode="multi-turn-own")
        rows = run_item(Prepared(item, built[0]), backend, retries=0, attempts_before={})
        assert [r.status for r in rows] == ["ok"] * len(built[0].turns), subset
        assert all(r.score is not None for r in rows), subset

"""SCBench (Li et al. 2024): one shared context per record, asked several follow-up requests (``multi_turns``).

A record is ``{"id", "context", "multi_turns": [{"input", "answer", "options"?}, ...]}`` as published (the
microsoft/SCBench dataset, one file per task: scbench_kv.jsonl, ...). Each record becomes one sample with a turn
per request, so it runs in the modes SCBench compares: ``--mode multi-turn`` (its default: every earlier turn's
gold answer is the assistant's reply), ``--mode multi-turn-own`` (the model's own answers, its
``--disable_golden_context``) and ``--mode multi-request`` (its shared-context, different-query mode, each
request on the context alone). The first request uses SCBench's first-turn template (instructions, context,
request); later ones its in-chat follow-up template; the system prompt, output caps and per-task scorers are
SCBench's (run_scbench.py, eval_utils.py, compute_scores.py).

The mixed sets (summary_with_needles, repoqa_and_kv) name each request's own task (``multi_turns[i].task``):
each turn is scored by that task's scorer, found through the sample's ``turn_tasks`` (gold answer → task).
RepoQA records carry ``repo`` and ``lang``, and each request the ``name`` of the function it describes; every
function of the record is a candidate its reply is matched against (``needles``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

# SCBench's first-turn templates; the request fills {question} (its {input}, or for QA and choice its question
# written in the follow-up form, which is the same text after the context).
TEMPLATE = {
    "scbench_kv": "Extract the value corresponding to the specified key in the JSON object below.\n\n"
    "{context}\n\n{question}",
    "scbench_kv_hard": "Extract the value corresponding to the specified key in the JSON object below.\n\n"
    "{context}\n\n{question}",
    "scbench_passkey": "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "it. I will quiz you about the important information.\n\n{context}\n\n{question}",
    "scbench_choice_eng": "Read the book and answer the question.\n\n{context}\n\n{question}",
    "scbench_qa_eng": "Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\n"
    "{question}",
    "scbench_qa_chn": "阅读以下书籍然后回答问题。\n\n{context}\n\n{question}",
    "scbench_summary": "{context}\n\n{question}",
    "scbench_vt": "{context}\n\n{question}",
    "scbench_many_shot": "{context}\n\n{question}",
    "scbench_hashhop": "{context}\n\n{question}",
    "scbench_prefix_suffix": "{context}\n\n{question}",
    "scbench_kv_compressible": "Extract the value corresponding to the specified key in the following passage."
    "\n\n{context}\n\n{question}",
    "scbench_repoqa": "Based on the function description and code context, please retrieve and repeat the exact "
    "described function from the code context in a code block wrapped by ```:\n\n{context}\n\n{question}",
    "scbench_summary_with_needles": "{context}\n\n{question}",
    "scbench_repoqa_and_kv": "{context}\n\n{question}",
    # scbench_mf: "{prefix}\n\n{context}\n\n{question}", the prefix asked from the first request (mf_template).
}
MAX_NEW_TOKENS = {
    "scbench_kv": 150, "scbench_kv_hard": 150, "scbench_passkey": 15, "scbench_choice_eng": 40,
    "scbench_qa_eng": 40, "scbench_qa_chn": 40, "scbench_summary": 200, "scbench_vt": 30,
    "scbench_many_shot": 10, "scbench_hashhop": 150, "scbench_prefix_suffix": 150, "scbench_mf": 5,
    "scbench_kv_compressible": 150, "scbench_repoqa": 1024,
    # SCBench caps the mixed sets per sub-task (summary 800 / passkey 15, repoqa 1024 / kv 80); one cap per sample
    # here, the larger.
    "scbench_summary_with_needles": 800, "scbench_repoqa_and_kv": 1024,
}  # fmt: skip
METRIC = {
    "scbench_kv": "scbench_kv", "scbench_kv_hard": "scbench_kv", "scbench_hashhop": "scbench_kv",
    "scbench_prefix_suffix": "scbench_kv", "scbench_passkey": "infinitebench_first_int",
    "scbench_choice_eng": "infinitebench_choice", "scbench_qa_eng": "scbench_contains_any_upper",
    "scbench_qa_chn": "infinitebench_qa_f1_zh", "scbench_summary": "infinitebench_rouge_lsum",
    "scbench_vt": "scbench_match_all", "scbench_many_shot": "scbench_contains_any_upper",
    "scbench_mf": "scbench_math_find", "scbench_kv_compressible": "scbench_kv", "scbench_repoqa": "scbench_repoqa",
    "scbench_summary_with_needles": "scbench_mixed", "scbench_repoqa_and_kv": "scbench_mixed",
}  # fmt: skip
# The sub-tasks a mixed set's requests may name.
MIXED = {
    "scbench_summary_with_needles": ("scbench_summary", "scbench_passkey"),
    "scbench_repoqa_and_kv": ("scbench_repoqa", "scbench_kv"),
}
# (diffusion, scope): exact-key lookups are marked needles; multi-hop hashes and variable chains hide the path;
# summaries and many-shot need the whole context.
PLANE = {
    "scbench_kv": (0.3, 0.1), "scbench_kv_hard": (0.5, 0.1), "scbench_passkey": (0.1, 0.1),
    "scbench_hashhop": (0.7, 0.3), "scbench_prefix_suffix": (0.6, 0.1), "scbench_choice_eng": (0.5, 0.4),
    "scbench_qa_eng": (0.5, 0.3), "scbench_qa_chn": (0.5, 0.3), "scbench_summary": (0.3, 1.0),
    "scbench_vt": (0.6, 0.4), "scbench_many_shot": (0.4, 0.8), "scbench_mf": (0.2, 1.0),
    "scbench_kv_compressible": (0.4, 0.1), "scbench_repoqa": (0.5, 0.1),
    "scbench_summary_with_needles": (0.3, 1.0), "scbench_repoqa_and_kv": (0.5, 0.1),
}  # fmt: skip
# SCBench's math-find request reads "The largest number of the list is"; its question names what it asks for.
_MF_TARGET = re.compile(r"The .+ is")
DEPARTURES = (
    "the mixed sets cap every request at the larger of their two caps (summary_with_needles 800, repoqa_and_kv "
    "1024), where SCBench caps each request by its own sub-task",
    "repoqa: SCBench's tree-sitter pass, which takes the first function out of the reply's first code block, is "
    "not run: the first code block is compared whole (the BLEU is the same when the block holds only the "
    "function); the candidate functions are those of the same record, where SCBench pools every record of the "
    "same repository",
    "mf in --mode multi-request asks each request after the first request's prefix and its own one, where "
    "SCBench's shared-context mode puts only the first prefix before the context and each own one after it",
    "SCBench scores each turn over all records together; here each turn is a row, and the report's per-turn "
    "series (multi-turn modes) give the same averages",
    "a string answer is one gold answer; SCBench's dialogue/many-shot rule iterates a string answer's characters",
    "the multiple-choice answer is matched among the record's answer and its option letter, as InfiniteBench's "
    "loader gives them",
)
SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True)
class SCBench(Benchmark):
    name: ClassVar[str] = "scbench"
    description: ClassVar[str] = (
        "SCBench: shared-context records asked several follow-up requests (KV lookup, passkey, QA, choice, "
        "summary, variable tracking, many-shot, hash hops), for --mode multi-turn, multi-turn-own, multi-request"
    )
    hub_id: ClassVar[str] = "microsoft/SCBench"
    subsets: ClassVar[tuple[str, ...]] = tuple(METRIC)
    fields: ClassVar[dict[str, Any]] = {"context": str, "multi_turns": list[dict]}
    id_field: ClassVar[str | None] = "id"
    truncation: ClassVar[str] = "middle"
    departures: ClassVar[tuple[str, ...]] = DEPARTURES

    subset_from_file = True
    subset_metrics = METRIC
    subset_planes = PLANE

    def validate(self, data: dict) -> str | None:
        turns = data["multi_turns"]
        if not turns:
            return "field 'multi_turns' holds no requests"
        for number, turn in enumerate(turns, start=1):
            if not isinstance(turn.get("input"), str):
                return f"request {number} of 'multi_turns' has no text 'input'"
            if turn.get("answer") in (None, "", []):
                return f"request {number} of 'multi_turns' has no 'answer'"
            if self.subset == "scbench_choice_eng" and len(turn.get("options") or ()) != 4:
                return f"request {number} of 'multi_turns' needs four 'options'"
            if self.subset == "scbench_mf" and not _MF_TARGET.search(turn["input"]):
                return f"request {number} of 'multi_turns' does not say 'The ... is' (what to find)"
            task = turn.get("task", "scbench_repoqa" if self.subset == "scbench_repoqa" else None)
            if self.subset in MIXED and task not in MIXED[self.subset]:
                return (
                    f"request {number} of 'multi_turns' names no task among {', '.join(MIXED[self.subset])}"
                )
            if task == "scbench_repoqa" and not isinstance(turn.get("name"), str):
                return f"request {number} of 'multi_turns' has no function 'name'"
        if self.subset in ("scbench_repoqa", "scbench_repoqa_and_kv"):
            for key in ("repo", "lang"):
                if not isinstance(data.get(key), str):
                    return f"field {key!r} is missing (RepoQA records name their repository and language)"
        return None

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        task = record.subset or self.subset
        data = record.data
        requests = data["multi_turns"]
        turns = tuple(
            Turn(question=request_text(task, turn, number, requests), answers=gold_answers(task, turn))
            for number, turn in enumerate(requests)
        )
        diffusion, scope = PLANE[task]
        metadata: dict[str, Any] = {
            "subset": task,
            "metric": METRIC[task],
            "diffusion": diffusion,
            "scope": scope,
        }
        if task in MIXED:
            metadata["turn_tasks"] = {turns[i].answers[0]: turn["task"] for i, turn in enumerate(requests)}
        if task in ("scbench_repoqa", "scbench_repoqa_and_kv"):
            metadata["lang"] = data["lang"]
            metadata["repo"] = data["repo"]
            metadata["needles"] = [[turn["name"], str(turn["answer"])] for turn in requests if "name" in turn]
        if task == "scbench_kv_compressible" and "task" in data:
            metadata["kv_task"] = data["task"]
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"],
            turns=turns,
            template=mf_template(requests[0]["input"]) if task == "scbench_mf" else TEMPLATE[task],
            max_new_tokens=MAX_NEW_TOKENS[task],
            system=SYSTEM,
            metadata=metadata,
        )


def mf_question(request: str) -> str:
    """SCBench's math-find prefix: "The largest number of the list is" asks "What is the largest number of the
    list?" (the first "The ... is" span, lower-cased, its " is" cut)."""
    return f"What is {_MF_TARGET.findall(request)[0].lower()[:-3]}?"


def mf_template(first_request: str) -> str:
    """The first math-find prompt: the first request's prefix, the context, the request."""
    prefix = mf_question(first_request).replace("{", "{{").replace("}", "}}")
    return f"{prefix}\n\n{{context}}\n\n{{question}}"


def request_text(task: str, turn: dict, number: int = 0, requests: list[dict] | None = None) -> str:
    """A request as SCBench writes it after the context (first turn) or as its own user message (later turns)."""
    if task == "scbench_mf" and number > 0:
        # SCBench builds every in-chat follow-up with the prefix its loop computed last: the last request's
        # (a quirk of its create_multiturn_prompt, kept so the prompts are the same).
        return f"{mf_question((requests or [turn])[-1]['input'])}\n\n{turn['input']}"
    if task == "scbench_choice_eng":
        a, b, c, d = turn["options"]
        return (
            f"Question: {turn['input']}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\n\n"
            "The the correct answer is"  # SCBench's text, "The the" included
        )
    if task == "scbench_qa_eng":
        return f"Question: {turn['input']}\nAnswer:"
    if task == "scbench_qa_chn":
        return f"问题：{turn['input']}\n答案："
    return turn["input"]


def gold_answers(task: str, turn: dict) -> tuple[str, ...]:
    """The turn's answers as strings; a choice's gold is its answer and the option letter it stands at."""
    answer = turn["answer"]
    golds = [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]
    if task == "scbench_choice_eng":
        options = [str(o) for o in turn.get("options") or ()]
        golds += ["ABCD"[options.index(g)] for g in list(golds) if g in options]
    return tuple(golds)

"""InfiniteBench (Zhang et al. 2024): twelve tasks beyond 100k tokens, in its open-model prompts and caps.

The prompts are InfiniteBench's templates for open models (src/prompt.py, yarn_mistral_templates: the ones
its scripts use for YaRN-Mistral, Yi-200K and ChatGLM3), fed as plain text without a chat template, with its
per-task output caps (src/eval_utils.py) and its middle truncation. Scores follow its compute_scores.py for
models other than GPT-4. Math.Calc is included with its partial-credit score and its 30,000-token cap, so on
most model windows its records do not fit even with no context and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

_NEEDLE = "There is an important info hidden inside a lot of irrelevant text. Find it"
TEMPLATE = {
    "passkey": _NEEDLE + " and memorize it. I will quiz you about the important information.\n\n"
    "{context}\n\n{question}\n\nThe pass key is",
    "number_string": _NEEDLE + ". I will quiz you about the important information there.\n\n"
    "{context}\n\n{question}\n\nThe sequence of digits is",
    "kv_retrieval": "Extract the value corresponding to the specified key in the JSON object below.\n\n"
    "{context}\n\n{question}",
    "longbook_sum_eng": "Summarize the book below.\n\n{context}\n\nSummary:",
    # The question holds the four options, "\nA. ...\nB. ...\nC. ...\nD. ...", after the question itself.
    "longbook_choice_eng": "Read the book and answer the question.\n\n{context}\n\nQuestion: {question}"
    "\n\nThe letter of the correct answer is",
    "longbook_qa_eng": "Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\n"
    "Question: {question}\nAnswer:",
    "longbook_qa_chn": "阅读以下书籍然后回答问题。\n\n{context}\n\n问题：{question}\n答案：",
    "math_calc": "Let us calculate the intermediate values of an expression.\n\nExpression: 1 + 3 + 4\n"
    "Values: [1, 4, 8]\n\nExpression: 8 - 3 + 2 - 4\nValues: [8, 5, 7, 3]\n\nExpression: {context}\nValues:",
    # The question is the four options, "A. ...\nB. ...\nC. ...\nD. ...".
    "code_debug": "Following is a Python code where exactly one of the functions/methods has a deliberate "
    "error that makes it crash.\n\n{context}\n\nOptions:\n{question}\n\nThe correct option is:",
    "longdialogue_qa_eng": "Below is a dialogue script where one random occurrence of a character name is "
    'replaced with "$$MASK$$", and you should try to guess who that character is.\n\n{context}\n\n'
    "The name that has been replaced with $$MASK$$ is likely",
}
# Built per record: the function's name and the call, and the number asked for, come from the record.
_CODE_RUN = (
    "There is a function called {func} in the following Python code.\n\n{{context}}\n\n"
    "Please compute the exact value of {{question}}. The value of {{question}} is"
)
_MATH_FIND = "{prefix}\n\n{{context}}\n\n{{question}}"

MAX_NEW_TOKENS = {
    "passkey": 6,
    "number_string": 12,
    "kv_retrieval": 50,
    "longbook_sum_eng": 1200,
    "longbook_choice_eng": 40,
    "longbook_qa_eng": 40,
    "longbook_qa_chn": 40,
    "longdialogue_qa_eng": 40,
    "math_find": 3,
    "math_calc": 30000,
    "code_run": 5,
    "code_debug": 5,
}
METRIC = {
    "passkey": "infinitebench_first_int",
    "number_string": "infinitebench_first_int",
    "kv_retrieval": "infinitebench_kv",
    "longbook_sum_eng": "infinitebench_rouge_lsum",
    "longbook_choice_eng": "infinitebench_choice",
    "longbook_qa_eng": "qa_f1",
    "longbook_qa_chn": "infinitebench_qa_f1_zh",
    "longdialogue_qa_eng": "infinitebench_dialogue",
    "math_find": "infinitebench_math_find",
    "math_calc": "infinitebench_math_calc",
    "code_run": "infinitebench_code_run",
    "code_debug": "infinitebench_code_debug",
}
# (diffusion, scope): how hard what is needed is to find, and how much of the context it takes.
PLANE = {
    "passkey": (0.05, 0.05),  # one marked line in repeated filler
    "number_string": (0.1, 0.05),
    "kv_retrieval": (0.3, 0.05),  # one key among thousands of look-alike UUID keys
    "longbook_sum_eng": (0.3, 1.0),
    "longbook_choice_eng": (0.6, 0.5),
    "longbook_qa_eng": (0.6, 0.4),
    "longbook_qa_chn": (0.6, 0.4),
    "longdialogue_qa_eng": (0.7, 0.3),  # one masked speaker, known only from the scene around it
    "math_find": (0.2, 1.0),  # every number must be seen to find the extreme one
    "math_calc": (0.1, 1.0),
    "code_run": (0.6, 0.5),  # follow nested calls across the file
    "code_debug": (0.7, 0.6),
}
_CALL = re.compile(r"func_[0-9]+\(\-?[0-9]+\)")
_TARGET = re.compile(r"The .+ of")
_CHOICE_TASKS = ("longbook_choice_eng", "code_debug")
_LETTERS = "ABCD"


@dataclass(frozen=True)
class InfiniteBench(Benchmark):
    name: ClassVar[str] = "infinitebench"
    description: ClassVar[str] = (
        "InfiniteBench: retrieval (passkey, numbers, key-value), novels (QA, choice, summary, dialogue), "
        "math and code over 100k+ token contexts"
    )
    hub_id: ClassVar[str] = "xinrongzhang2022/InfiniteBench"
    subsets: ClassVar[tuple[str, ...]] = tuple(METRIC)
    fields: ClassVar[dict[str, Any]] = {
        "context": str,
        "input": str,
        "answer": str | int | float | list[str | int | float] | list[list[str | int | float]],
    }
    id_field: ClassVar[str | None] = "id"

    subset_from_file = True

    def data_files(self) -> list[str]:
        stem = self.subset
        return [f"{stem}.jsonl", f"data/{stem}.jsonl", f"{stem}.json", f"{stem}.parquet"]

    def hub_args(self) -> dict[str, Any]:
        # One file per task at the top of the hub repository: only that task's file is fetched (the tasks'
        # answers differ in type).
        return self.hub_file(f"{self.subset}.jsonl")

    def validate(self, data: dict) -> str | None:
        if not answers_of(data):
            return "no gold answer"
        return task_problem(self.subset, data)

    subset_metrics = METRIC
    subset_planes = PLANE

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        task = record.subset or self.subset
        data = record.data
        question, template = data["input"], TEMPLATE.get(task, "")
        answers = answers_of(data)
        if task in _CHOICE_TASKS:
            options = "\n".join(
                f"{letter}. {option}" for letter, option in zip(_LETTERS, data["options"], strict=True)
            )
            question = options if task == "code_debug" else f"{data['input']}\n{options}"
            answers = choice_gold(data)
        elif task == "code_run":
            question = _CALL.search(data["input"]).group()
            template = _CODE_RUN.format(func=question.split("(")[0])
        elif task == "math_find":
            # "The largest number of the list is: " -> "What is the largest number in the following list?"
            target = _TARGET.findall(data["input"])[0].lower()[:-3]
            template = _MATH_FIND.format(prefix=_escape(f"What is {target} in the following list?"))
        diffusion, scope = PLANE[task]
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"],
            turns=(Turn(question=question, answers=tuple(answers)),),
            template=template,
            max_new_tokens=MAX_NEW_TOKENS[task],
            chat=False,
            metadata={"subset": task, "metric": METRIC[task], "diffusion": diffusion, "scope": scope},
        )


def answers_of(data: dict) -> list[str]:
    """The gold answers as text: a bare value, a list, or (math_calc) a list holding the list of values."""
    answer = data["answer"]
    if not isinstance(answer, list):
        answer = [answer]
    elif answer and isinstance(answer[0], list):
        answer = answer[0]
    return [str(value) for value in answer]


def choice_gold(data: dict) -> list[str]:
    """(option text, letter), as InfiniteBench's get_answer makes it from the answer and the options."""
    answer = data["answer"]
    if isinstance(answer, list) and len(answer) == 2 and answer[1] in list(_LETTERS):
        return [str(answer[0]), answer[1]]
    text = answer[0] if isinstance(answer, list) else answer
    return [str(text), _LETTERS[data["options"].index(text)]]


def task_problem(task: str, data: dict) -> str | None:
    """Why a record cannot be used for ``task``, or None."""
    if task in _CHOICE_TASKS:
        options = data.get("options")
        if not (isinstance(options, list) and len(options) == 4 and all(isinstance(o, str) for o in options)):
            return "field 'options' should be a list of 4 strings"
        answer = data["answer"]
        paired = isinstance(answer, list) and len(answer) == 2 and answer[1] in list(_LETTERS)
        single = answer[0] if isinstance(answer, list) and len(answer) == 1 else answer
        if not paired and single not in options:
            return "the answer is not one of the options"
    if task == "code_run" and _CALL.search(data["input"]) is None:
        return "field 'input' names no call such as func_12(-3)"
    if task == "math_find" and not _TARGET.search(data["input"]):
        return "field 'input' does not say which number is asked for ('The ... of')"
    numeric = {"code_run": int, "math_calc": int, "math_find": float}.get(task)
    if numeric is not None:
        try:
            [numeric(value) for value in answers_of(data)]
        except ValueError:
            return f"field 'answer' should hold {'integers' if numeric is int else 'numbers'}"
    return None


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")

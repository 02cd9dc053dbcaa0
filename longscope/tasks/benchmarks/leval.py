"""L-Eval (An et al. 2023): its closed-ended tasks, one sample per document with one turn per instruction.

Prompts are L-Eval's chat-model ones (Baselines/turbo16k-test.py with LEval_config.py's system prompts), the
output cap is its 512 tokens, and a document too long for the model loses its end (codeU: its start), as
L-Eval cuts it. The open-ended tasks (named one by one) are graded by the run's judge (--judge) against the
human reference answer, and skipped with the reason when the run has none. sci_fi scores the document-grounded answer only; L-Eval also asks the
question again without the document and averages in that "fact" answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

CLOSED_ENDED = ("coursera", "gsm100", "quality", "tpo", "topic_retrieval_longchat", "codeU", "sci_fi")
OPEN_ENDED = (
    "financial_qa",
    "gov_report_summ",
    "legal_contract_qa",
    "meeting_summ",
    "multidoc_qa",
    "narrative_qa",
    "natural_question",
    "news_summ",
    "paper_assistant",
    "patent_summ",
    "review_summ",
    "scientific_qa",
    "tv_show_summ",
)
MAX_NEW_TOKENS = 512

# The system prompts, verbatim (typos included: they are the benchmark's prompt).
_EXAM_SYSTEM = (
    "Now you are given a very long document. Please follow the instruction based on this document. For "
    "multi-choice questions, there is only a sinlge correct option. Please only provide the letter "
    "corresponding to the answer (like A or B) when answering. For other questions, please directly give the "
    "concise and accurate answer. "
)
SYSTEM = {
    "gsm100": "Given several question answer pairs, you need to follow a similar format to answer the last "
    "question. Make sure the response is end with The answer is _ . ",
    "topic_retrieval_longchat": "Below is a record of our previous conversation on many different topics. You "
    "are the ASSISTANT, and I am the USER. At the beginning of each topic, the USER will say 'I would like to "
    "discuss the topic of <TOPIC>'. Memorize each <TOPIC>. At the end of the record, I will ask you to "
    "retrieve the first/second/third topic names. Now the record start. ",
    "coursera": "Now you are given a very long document. Please follow the instruction based on this "
    "document. For multi-choice questions, there could be a sinlge correct option or multiple correct options. "
    "Please only provide the letter corresponding to the answer (like A or AB) when answering. ",
    "codeU": "Now you are given a code base consisting of a large amount of functions and the corresponding "
    "comments. In the end, I will call some functions defined in the code base. Please carefully read these "
    "codes and comments and answer the question.",
    "sci_fi": "Now you are given a scientific fiction. I will ask you some questions and the answer should be "
    '"True" or "False". Notice that you should answer the question based on the evidence in the document '
    "instead of your background knowledge.",
    "quality": _EXAM_SYSTEM,
    "tpo": _EXAM_SYSTEM,
}
# The open-ended tasks' system prompt (LEval_config.get_sys_prompt's last branch), verbatim.
OPEN_SYSTEM = (
    "Now you are given a very long document. Please follow the instruction after this document. These "
    "instructions may include summarizing a document, answering questions based on the document, or writing a "
    "required paragraph. "
)
# turbo16k-test.py's open-ended prompt; the suggested length (the gold's words) travels with the instruction.
_OPEN = "Document is as follows. {context} Instruction: {question} Output: "
# gsm100 (16-shot examples) and codeU put the instruction straight after the document.
_BARE = "{context}\n\n{question}"
_EXAM = (
    "Document is as follows. {context} Question: {question} \n"
    "Please directly give answer without any additional output or explanation\n Answer: "
)
TEMPLATE = {task: _BARE if task in ("gsm100", "codeU") else _EXAM for task in CLOSED_ENDED}
TEMPLATE.update({task: _OPEN for task in OPEN_ENDED})
SYSTEM.update({task: OPEN_SYSTEM for task in OPEN_ENDED})
METRIC = {
    "coursera": "leval_choice_multi",
    "quality": "leval_choice",
    "tpo": "leval_choice",
    "gsm100": "leval_math",
    "topic_retrieval_longchat": "leval_exact",
    "codeU": "leval_code",
    "sci_fi": "leval_true_false",
    **{task: "judge" for task in OPEN_ENDED},
}
# (diffusion, scope): how hard what is needed is to find, and how much of the document it takes.
PLANE = {
    "coursera": (0.4, 0.5),  # lecture transcripts; questions paraphrase what was said
    "quality": (0.5, 0.6),  # questions about a whole story's plot and motives
    "tpo": (0.4, 0.4),  # lecture questions, each about one passage
    "gsm100": (0.1, 0.2),  # the document is worked examples to imitate, not facts to find
    "topic_retrieval_longchat": (0.3, 0.1),  # each topic is announced by a fixed phrase
    "codeU": (0.7, 0.6),  # follow calls through renamed functions
    "sci_fi": (0.5, 0.3),  # the story's facts, against what the model knows
    # Open-ended: summaries need the whole document; questions one or a few of its passages.
    **{task: (0.3, 0.9) for task in OPEN_ENDED if task.endswith("_summ")},
    **{task: (0.4, 0.3) for task in OPEN_ENDED if not task.endswith("_summ")},
}


@dataclass(frozen=True)
class LEval(Benchmark):
    name: ClassVar[str] = "leval"
    description: ClassVar[str] = (
        "L-Eval closed-ended tasks (multiple choice, math, topic retrieval, code, true/false): several "
        "instructions per long document, exact-match scored"
    )
    hub_id: ClassVar[str] = "L4NLP/LEval"
    subsets: ClassVar[tuple[str, ...]] = CLOSED_ENDED + OPEN_ENDED
    default_subsets: ClassVar[tuple[str, ...] | None] = CLOSED_ENDED
    fields: ClassVar[dict[str, Any]] = {"input": str, "instructions": list[str], "outputs": list[str]}

    subset_from_file = True

    def data_files(self) -> list[str]:
        # GitHub: LEval-data/Closed-ended-tasks/<task>.jsonl; the hub: LEval/Exam/<task>.jsonl.
        names = [f"{self.subset}.jsonl"]
        for group in ("Closed-ended-tasks", "Open-ended-tasks", "Exam", "Generation"):
            names += [f"{top}{group}/{self.subset}.jsonl" for top in ("", "LEval-data/", "LEval/")]
        return names + [f"{self.subset}.json", f"{self.subset}.parquet"]

    def hub_args(self) -> dict[str, Any]:
        group = "Generation" if self.subset in OPEN_ENDED else "Exam"
        return self.hub_file(f"LEval/{group}/{self.subset}.jsonl")

    departures: ClassVar[tuple[str, ...]] = (
        "Open-ended tasks: L-Eval's GPT-4 judge compares each answer with turbo-16k-0613's answer to the same "
        "instruction (pair-v2, both orders) and reports a win rate; those baseline answers are not in the "
        "records, so longscope's judge grades each answer alone against the human reference answer, on one "
        "item in quarter steps (judging/prompts.py REFERENCE, written after L-Eval's judge instructions).",
    )

    @property
    def needs_judge(self) -> bool:
        return self.subset in OPEN_ENDED

    def validate(self, data: dict) -> str | None:
        if not data["instructions"]:
            return "no instructions"
        if len(data["instructions"]) != len(data["outputs"]):
            return (
                f"{len(data['instructions'])} instructions but {len(data['outputs'])} outputs; "
                "each instruction needs its output"
            )
        return None

    def sample_id(self, length: int, depth: float | None, seed: int) -> str:
        # An open-ended task has no usable record, and the runner still asks for an id while it writes the
        # rejected records' skipped rows.
        if not self.records():
            return f"{self.label()}/-"
        return super().sample_id(length, depth, seed)

    subset_metrics = METRIC
    subset_planes = PLANE

    @property
    def truncation(self) -> str:
        # L-Eval keeps a document's start; codeU's question is about the calls at its end.
        return "left" if self.subset == "codeU" else "right"

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        task = record.subset or self.subset
        data = record.data
        if task in OPEN_ENDED:
            return self._open_sample(record, index, task)
        turns = tuple(
            Turn(question=instruction, answers=(_gold(task, output),))
            for instruction, output in zip(data["instructions"], data["outputs"], strict=True)
        )
        diffusion, scope = PLANE[task]
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["input"],
            turns=turns,
            template=TEMPLATE[task],
            max_new_tokens=MAX_NEW_TOKENS,
            system=SYSTEM[task],
            metadata={
                "subset": task,
                "metric": METRIC[task],
                "source": str(data.get("source") or ""),
                "diffusion": diffusion,
                "scope": scope,
            },
        )

    def _open_sample(self, record: Record, index: int, task: str) -> Sample:
        """An open-ended document: one turn per instruction, each graded by the judge against its reference."""
        data = record.data
        diffusion, scope = PLANE[task]
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["input"],
            turns=tuple(_open_turn(i, o) for i, o in zip(data["instructions"], data["outputs"], strict=True)),
            template=TEMPLATE[task],
            max_new_tokens=MAX_NEW_TOKENS,
            system=SYSTEM[task],
            metadata={
                "subset": task,
                "metric": "judge",
                "judge_prompt": "reference",
                "source": str(data.get("source") or ""),
                "diffusion": diffusion,
                "scope": scope,
            },
        )


def _open_turn(instruction: str, output: str) -> Turn:
    """An open-ended instruction as L-Eval asks it, with the suggested length (the gold's words) after it."""
    question = f"{instruction} The suggested output length is around {len(output.split())} words."
    return Turn(question=question, answers=(output,))


def _gold(task: str, output: str) -> str:
    """sci_fi's outputs read "True [fact: False]": the verdict from the document is the gold here."""
    return output.split("[fact:")[0].strip() if task == "sci_fi" else output

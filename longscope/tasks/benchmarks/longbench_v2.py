"""LongBench v2: 503 long-context multiple-choice questions, in its 0-shot prompt, scored by its letter rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.tasks.benchmarks.base import Benchmark, Record

# LongBench v2's prompts/0shot.txt (THUDM/LongBench), its placeholders $DOC$ and $Q$ written as {context} and
# {question}; pred.py fills them with the stripped context, question and choices.
PROMPT_0SHOT = (
    "Please read the following text and answer the question below.\n\n<text>\n$DOC$\n</text>\n\n"
    "What is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\n"
    'Format your response as follows: "The correct answer is (insert answer here)".'
)
# pred.py's output cap without chain of thought (CoT runs get 1024 for the reasoning, then 128 again).
MAX_NEW_TOKENS = 128
LETTERS = ("A", "B", "C", "D")
DIFFICULTIES = ("easy", "hard")
LENGTH_CLASSES = ("short", "medium", "long")  # v2's own split by words: <32k, 32k-128k, >128k


def template_for(data: dict) -> str:
    """The 0-shot prompt with this record's choices in place; literal braces doubled for str.format."""
    text = PROMPT_0SHOT.replace("{", "{{").replace("}", "}}")
    for letter in LETTERS:
        choice = data[f"choice_{letter}"].strip().replace("{", "{{").replace("}", "}}")
        text = text.replace(f"$C_{letter}$", choice)
    return text.replace("$DOC$", "{context}").replace("$Q$", "{question}")


@dataclass(frozen=True)
class LongBenchV2(Benchmark):
    """LongBench v2; ``longbench_v2(difficulty=hard,length=short)`` keeps only those records."""

    name: ClassVar[str] = "longbench_v2"
    description: ClassVar[str] = (
        "LongBench v2: 503 multiple-choice questions over 8k-2M-word contexts, easy/hard x short/medium/long"
    )
    metric: ClassVar[str] = "longbench_v2_choice"
    breakdowns: ClassVar[tuple[str, ...]] = ("difficulty", "length_class", "difficulty_length", "domain")
    hub_id: ClassVar[str] = "THUDM/LongBench-v2"
    fields: ClassVar[dict[str, Any]] = {
        "_id": str,
        "domain": str,
        "sub_domain": str,
        "difficulty": str,
        "length": str,
        "question": str,
        "choice_A": str,
        "choice_B": str,
        "choice_C": str,
        "choice_D": str,
        "answer": str,
        "context": str,
    }
    truncation: ClassVar[str] = "middle"  # pred.py keeps the first and last halves of the token budget

    difficulty: str = ""  # "" (all), easy or hard
    length: str = ""  # "" (all), short, medium or long: v2's length class, not a token count

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.difficulty and self.difficulty not in DIFFICULTIES:
            raise UsageError(
                f"longbench_v2: difficulty {self.difficulty!r} is not one of {', '.join(DIFFICULTIES)}"
            )
        if self.length and self.length not in LENGTH_CLASSES:
            raise UsageError(
                f"longbench_v2: length {self.length!r} is not one of {', '.join(LENGTH_CLASSES)}"
            )

    @property
    def diffusion(self) -> float:
        return 0.7  # answers hide in long, realistic documents with plausible distractor choices

    @property
    def scope(self) -> float:
        return 0.7  # questions are written to need reasoning over much of the context

    def data_files(self) -> list[str]:
        return ["data.json", "data.jsonl", "data.parquet", "data/data.json", "train.parquet"]

    def hub_args(self) -> dict[str, Any]:
        return {"path": self.hub_id, "split": "train"}

    def validate(self, data: dict) -> str | None:
        if data["answer"].strip() not in LETTERS:
            return f"answer {data['answer']!r} is not one of A, B, C, D"
        if data["difficulty"] not in DIFFICULTIES:
            return f"difficulty {data['difficulty']!r} is not one of {', '.join(DIFFICULTIES)}"
        if data["length"] not in LENGTH_CLASSES:
            return f"length {data['length']!r} is not one of {', '.join(LENGTH_CLASSES)}"
        return None

    def selects(self, data: dict) -> bool:
        return (not self.difficulty or data["difficulty"] == self.difficulty) and (
            not self.length or data["length"] == self.length
        )

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        data = record.data
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=data["context"].strip(),
            turns=(Turn(question=data["question"].strip(), answers=(data["answer"].strip(),)),),
            template=template_for(data),
            max_new_tokens=MAX_NEW_TOKENS,
            metadata={
                "difficulty": data["difficulty"],
                "length_class": data["length"],
                "difficulty_length": f"{data['difficulty']}/{data['length']}",
                "domain": data["domain"],
                "sub_domain": data["sub_domain"],
            },
        )

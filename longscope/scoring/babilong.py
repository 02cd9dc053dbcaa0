"""BABILong's answer check: the gold label is the one task label named in the reply's first sentence."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS

# Every answer a bAbI task can have (BABILong's TASK_LABELS); a reply is judged by which of these it names.
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "qa1": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa2": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa3": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa4": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa5": ("Bill", "Fred", "Jeff", "Mary", "apple", "football", "milk"),
    "qa6": ("no", "yes"),
    "qa7": ("none", "one", "three", "two"),
    "qa8": ("apple", "football", "milk", "nothing"),
    "qa9": ("no", "yes"),
    "qa10": ("maybe", "no", "yes"),
    "qa11": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa12": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa13": ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
    "qa14": ("bedroom", "cinema", "kitchen", "office", "park", "school"),
    "qa15": ("cat", "mouse", "sheep", "wolf"),
    "qa16": ("gray", "green", "white", "yellow"),
    "qa17": ("no", "yes"),
    "qa18": ("no", "yes"),
    "qa19": ("e,e", "e,n", "e,s", "n,e", "n,n", "n,w", "s,e", "s,s", "s,w", "w,n", "w,s", "w,w"),
    "qa20": ("bedroom", "bored", "garden", "hungry", "kitchen", "thirsty", "tired"),
}


def first_sentence(reply: str) -> str:
    """The reply, lower-cased, up to its first period and before any example or context the model starts
    writing (BABILong's preprocess_output)."""
    text = reply.lower().split(".")[0]
    return text.split("<context>")[0].split("<example>")[0]


def babilong_match(reply: str, target: str, question: str, labels: Sequence[str]) -> bool:
    """BABILong's compare_answers: the labels named in the first sentence, less those the question itself
    names, must be exactly the target (or, for a two-object qa8 target such as "apple,milk", exactly its
    parts). Labels are found as substrings, as BABILong does."""
    text = first_sentence(reply)
    target = target.lower()
    known = {label.lower() for label in labels}
    in_question = {label for label in known if label in question.lower()}
    named = {label for label in known if label in text} - in_question
    if "," in target and len(target) > 3:
        parts = target.split(",")
        return all(part in named for part in parts) and len(named) == len(parts)
    return target in named and len(named) == 1


@SCORERS.register("babilong")
def babilong(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """1 if the reply names the gold label and no other (see ``babilong_match``). The sample's metadata gives
    the bAbI task ("qa_task", whose label set is used) and the question ("question")."""
    task = meta.get("qa_task", "")
    if task not in TASK_LABELS:
        raise ValueError(f"babilong scorer: unknown bAbI task {task!r} in the sample metadata")
    question = meta.get("question", "")
    return float(any(babilong_match(prediction, target, question, TASK_LABELS[task]) for target in answers))
